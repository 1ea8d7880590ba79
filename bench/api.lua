-- wrk script for bench/api.sh: every request asks about a random vehicle.
--
--   wrk -s bench/api.lua URL -- PREFIX VEHICLES [QUERY [LETTER]]
--
-- requests PREFIX .. LETTER .. random(1..VEHICLES) .. QUERY (LETTER "V" by
-- default, "M" for meters), counts the responses
-- whose status is not 2xx (wrk's own count covers only 4xx and 5xx), and at the
-- end prints one line for the caller to parse:
--
--   wrk-result requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=..
--              max_ms=.. non2xx=N connect_errors=N read_errors=N
--              write_errors=N timeouts=N
--
-- Latencies come from wrk's histogram (microseconds), so --latency or not,
-- the percentiles are the exact recorded ones, not the rounded text report.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "/"
  vehicles = tonumber(args[2]) or 1
  query = args[3] or ""
  letter = args[4] or "V"
  non2xx = 0
  -- Each thread has its own Lua state: seed each differently.
  math.randomseed(os.time() * 1000 + id * 7919)
end

function request()
  return wrk.format(nil, prefix .. letter .. math.random(vehicles) .. query)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
  end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad, e.connect, e.read, e.write, e.timeout))
end
