-- stripe_hook.lua: POST /hooks/stripe, Stripe's webhook, with the events
-- bench/run signed just before the run (EVENTS: one a line, "ID<tab>
-- STRIPE-SIGNATURE<tab>JSON BODY"). Each thread takes every THREADS-th
-- event and sends its share in turn, over and over: the first round
-- stores each event, every later round is made of duplicates (answered
-- 200 "duplicate", changing nothing), as Stripe's retries are. The id of
-- each event a thread sends in its first round goes to SENT.ID, for
-- bench/run to compare with the stripe_events table. Counts the answers:
-- n200 (and ndup, those of them that said "duplicate") and nother; sent
-- minus the answers is what was still in flight when wrk stopped.
-- Arguments: EVENTS THREADS SENT
n200, ndup, nother, sent = 0, 0, 0, 0
local events, next_event, first_round = {}, 0, nil

function init(args)
   local nthreads = tonumber(args[2])
   local k = 0
   for line in io.lines(args[1]) do
      if k % nthreads == id then
         local eid, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
         events[#events + 1] = { eid, wrk.format("POST", "/hooks/stripe", {
            ["Content-Type"] = "application/json",
            ["Stripe-Signature"] = sig,
         }, body) }
      end
      k = k + 1
   end
   assert(#events > 0, "no events for thread " .. id)
   first_round = assert(io.open(args[3] .. "." .. id, "w"))
end

function request()
   sent = sent + 1
   next_event = next_event % #events + 1
   if sent <= #events then
      first_round:write(events[next_event][1], "\n")
      if sent == #events then
         first_round:close()
      end
   end
   return events[next_event][2]
end

function response(status, headers, body)
   if status == 200 then
      n200 = n200 + 1
      if body:sub(1, 9) == "duplicate" then
         ndup = ndup + 1
      end
   else
      nother = nother + 1
   end
end
