-- segw-both.lua: both directions at once. Port 0 sends uplink ESP
-- (-s 0:uplink.pcap) and counts downlink ESP; port 1 sends downlink plain IP
-- (-s 1:downlink.pcap) and counts decapsulated uplink packets.
--   SEGW_SECONDS=30 SEGW_RATE=50 pktgen ... -- -P -m "[1:2].0, [3:4].1" \
--       -s 0:uplink.pcap -s 1:downlink.pcap -f bench/pktgen/segw-both.lua
-- Settings: bench/pktgen/segw-common.lua.
local source = debug.getinfo(1, "S").source
local here = source:match("^@(.*/)") or "./"
local common = dofile(here .. "segw-common.lua")
common.run({ name = "segw-both", tx = "0,1", rx = "0,1" })
