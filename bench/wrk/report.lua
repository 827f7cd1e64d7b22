-- report.lua: the end of every bench/run script. wrk runs setup() once per
-- thread and done() once at the end; done() prints one line "BENCH {json}"
-- with the totals, the latency percentiles (microseconds) and the
-- counters that the threads kept (n303, n200, ndup, nother, ran_out,
-- sent).
local threads = {}
local taken = 0

-- The next of a thread's one-time tokens (ask_post.lua, upload_post.lua),
-- or nil once they ran out (counted in the script's ran_out).
function take(tokens)
   taken = taken + 1
   if tokens[taken] == nil then
      ran_out = ran_out + 1
   end
   return tokens[taken]
end

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

local function total(name)
   local n = 0
   for _, t in ipairs(threads) do
      n = n + (tonumber(t:get(name)) or 0)
   end
   return n
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"mean_us": %.1f, "errors": {"connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d}, "n303": %d, ' ..
      '"n200": %d, "ndup": %d, "nother": %d, "ran_out": %d, "sent": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout,
      total("n303"), total("n200"), total("ndup"), total("nother"),
      total("ran_out"),
      total("sent")))
end
