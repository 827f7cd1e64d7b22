-- upload_post.lua: POST /o/TOKEN/messages, a follow-up question with one
-- file, each to another answered order (an order takes one follow-up;
-- sent again, the same order would refuse it). The multipart body is the
-- same for all, read once from BODY-FILE; the CSRF cookie and token pair
-- in it and in COOKIE serves every order. Counts the answers: a 303 is a
-- follow-up stored with its file; ran_out counts requests sent after the
-- orders ran out (to an empty token: refused); every other answer's
-- status is written to STATUSES.ID, one a line.
-- Arguments: TOKENS-FILE THREADS COOKIE ORIGIN CONTENT-TYPE BODY-FILE
--            STATUSES
n303, n200, nother, ran_out, sent = 0, 0, 0, 0, 0
local tokens, headers, body, statuses = {}, nil, nil, nil

function init(args)
   local nthreads, k = tonumber(args[2]), 0
   -- Each thread takes every nthreads-th order.
   for line in io.lines(args[1]) do
      if k % nthreads == id then
         tokens[#tokens + 1] = line
      end
      k = k + 1
   end
   statuses = assert(io.open(args[7] .. "." .. id, "w"))
   local f = assert(io.open(args[6], "rb"))
   body = f:read("*a")
   f:close()
   headers = {
      ["Content-Type"] = args[5],
      ["Cookie"] = args[3],
      ["Origin"] = args[4],
   }
end

function request()
   sent = sent + 1
   local tok = take(tokens) or "-"
   return wrk.format("POST", "/o/" .. tok .. "/messages", headers, body)
end

function response(status, headers, body)
   if status == 303 then
      n303 = n303 + 1
   elseif status == 200 then
      n200 = n200 + 1
   else
      nother = nother + 1
      statuses:write(status, "\n")
      statuses:flush()
   end
end
