-- segw-downlink.lua: downlink only. Generator port 1 (cabled to segw's core
-- port) replays segw-pcapgen's outbound plain IP (-s 1:downlink.pcap);
-- port 0 (cabled to segw's access port) counts the ESP segw sends.
--   SEGW_SECONDS=30 SEGW_RATE=100 pktgen ... -- -P -m "[1:2].0, [3:4].1" \
--       -s 1:downlink.pcap -f bench/pktgen/segw-downlink.lua
-- Settings: bench/pktgen/segw-common.lua.
local source = debug.getinfo(1, "S").source
local here = source:match("^@(.*/)") or "./"
local common = dofile(here .. "segw-common.lua")
common.run({ name = "segw-downlink", tx = "1", rx = "0" })
