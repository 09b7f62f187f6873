-- segw-common.lua: shared by segw-uplink.lua, segw-downlink.lua and
-- segw-both.lua (bench/pktgen/README.md). Runs pktgen-dpdk's pcap mode on
-- the given TX ports for a fixed time at a fixed rate, then records the
-- port counters of every port as one JSON object (printed and written to a
-- file) for reading beside segw-dataplane --stats-json.
--
-- Port roles (the cabling of README.md, step 2):
--   generator port 0 <-> segw access port (ESP in UDP from the peers' side)
--   generator port 1 <-> segw core port   (plain IP from the core's side)
-- The pcaps come from pktgen's command line: -s 0:uplink.pcap -s 1:downlink.pcap
--
-- Settings come from the environment (pktgen passes no arguments to -f):
--   SEGW_SECONDS   sending time in seconds                      (default 30)
--   SEGW_RATE      TX rate in percent of the link speed, "100", "2.5" (default 100)
--   SEGW_DRAIN_MS  wait after stopping before the final counters (default 1000)
--   SEGW_RESULT    JSON file to write                   (default <script>.json)
--   SEGW_QUIT      1: quit pktgen when done (unattended runs)     (default 0)

local M = {}

local function env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then return default end
  return value
end

local function env_number(name, default)
  local text = env(name, nil)
  if text == nil then return default end
  local value = tonumber(text)
  if value == nil or value < 0 then
    error(string.format("%s=%s: expected a non-negative number", name, text))
  end
  return value
end

-- Counters of every port, indexed by port id (pktgen.portStats "port":
-- totals since the last clear).
local function snapshot(ports)
  local stats = pktgen.portStats(ports, "port")
  local out = {}
  for pid, s in pairs(stats) do
    if type(pid) == "number" then
      out[pid] = {
        ipackets = s.ipackets, opackets = s.opackets, ibytes = s.ibytes, obytes = s.obytes,
        ierrors = s.ierrors, oerrors = s.oerrors, imissed = s.imissed, rx_nombuf = s.rx_nombuf,
      }
    end
  end
  return out
end

-- The port ids of a pktgen stats table (it also carries a count, "n").
local function sorted_ids(t)
  local ids = {}
  for pid in pairs(t) do
    if type(pid) == "number" then ids[#ids + 1] = pid end
  end
  table.sort(ids)
  return ids
end

-- Minimal JSON for a flat table of numbers and strings, keys sorted.
local function json_object(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    local text
    if type(v) == "number" then
      text = (math.type and math.type(v) == "integer") and tostring(v) or string.format("%.6f", v)
    elseif type(v) == "table" then
      text = v.__json
    else
      text = string.format("%q", tostring(v))
    end
    parts[#parts + 1] = string.format("%q: %s", tostring(k), text)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- opts.name: script name (JSON "script", default result file)
-- opts.tx:   port list string of the sending ports, e.g. "0" or "0,1"
-- opts.rx:   port list string of the ports whose reception is the result
function M.run(opts)
  local seconds = env_number("SEGW_SECONDS", 30)
  local rate = env("SEGW_RATE", "100")
  local drain_ms = env_number("SEGW_DRAIN_MS", 1000)
  local result_path = env("SEGW_RESULT", opts.name .. ".json")
  if tonumber(rate) == nil or tonumber(rate) <= 0 or tonumber(rate) > 100 then
    error("SEGW_RATE=" .. rate .. ": expected a percentage in (0, 100]")
  end
  if seconds <= 0 then error("SEGW_SECONDS must be > 0") end

  print(string.format("%s: tx ports %s, rx ports %s, %s %% of line rate for %g s",
                      opts.name, opts.tx, opts.rx, rate, seconds))
  print(opts.name .. ": segw-pcapgen ESP repeats its sequence numbers when pktgen loops the file;" ..
        " size -n for the whole run or set anti_replay = no for the measurement")

  pktgen.stop("all")
  pktgen.pcap(opts.tx, "on")     -- send the -s P:file capture, looped
  pktgen.set(opts.tx, "count", 0) -- no packet limit: the time ends the run
  pktgen.set(opts.tx, "rate", rate)
  pktgen.clr()
  pktgen.delay(500)

  local before = snapshot("all")
  pktgen.start(opts.tx)
  for second = 1, math.ceil(seconds) do
    pktgen.delay(math.floor(math.min(1, seconds - (second - 1)) * 1000))
    local rates = pktgen.portStats("all", "rate")
    local line = {}
    for _, pid in ipairs(sorted_ids(rates)) do
      local r = rates[pid]
      line[#line + 1] = string.format("port %d tx %.3f Mpps rx %.3f Mpps", pid,
                                      r.opackets / 1e6, r.ipackets / 1e6)
    end
    print(string.format("%s: %3d s  %s", opts.name, second, table.concat(line, " | ")))
  end
  pktgen.stop(opts.tx)
  pktgen.delay(drain_ms)           -- in-flight packets reach the RX counters
  local after = snapshot("all")

  local ports = {}
  local port_parts = {}
  for _, pid in ipairs(sorted_ids(after)) do
    local a, b = after[pid], before[pid] or {}
    local d = {}
    for k, v in pairs(a) do d[k] = v - (b[k] or 0) end
    d.tx_mpps = d.opackets / seconds / 1e6
    d.rx_mpps = d.ipackets / seconds / 1e6
    ports[pid] = d
    port_parts[#port_parts + 1] = string.format("%q: %s", tostring(pid), json_object(d))
  end
  local result = json_object({
    script = opts.name, seconds = seconds, rate_percent = tonumber(rate),
    tx_ports = opts.tx, rx_ports = opts.rx,
    ports = { __json = "{" .. table.concat(port_parts, ", ") .. "}" },
  })
  print(result)
  local file, err = io.open(result_path, "w")
  if file then
    file:write(result, "\n")
    file:close()
    print(opts.name .. ": written to " .. result_path)
  else
    print(opts.name .. ": cannot write " .. result_path .. ": " .. tostring(err))
  end
  if env("SEGW_QUIT", "0") == "1" then pktgen.quit() end
  return ports
end

return M
