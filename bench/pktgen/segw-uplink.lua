-- segw-uplink.lua: uplink only. Generator port 0 (cabled to segw's access
-- port) replays segw-pcapgen's inbound ESP (-s 0:uplink.pcap); port 1
-- (cabled to segw's core port) counts the decapsulated packets.
--   SEGW_SECONDS=30 SEGW_RATE=100 pktgen ... -- -P -m "[1:2].0, [3:4].1" \
--       -s 0:uplink.pcap -f bench/pktgen/segw-uplink.lua
-- Settings: bench/pktgen/segw-common.lua.
local source = debug.getinfo(1, "S").source
local here = source:match("^@(.*/)") or "./"
local common = dofile(here .. "segw-common.lua")
common.run({ name = "segw-uplink", tx = "0", rx = "1" })
