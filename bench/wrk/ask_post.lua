-- ask_post.lua: POST /ask, a complete and valid question each time, with a
-- fresh one-time form token from the files ask_tokens.lua wrote (a token
-- makes one order; sent again, it would only find that order). The CSRF
-- cookie and token pair is the same for all. Counts the answers: a 303 is
-- an order stored, and its Location (the order's signed link, which holds
-- its id) is written to LOCATIONS.ID for bench/run to look each one up;
-- ran_out counts requests sent after the tokens ran out (they carry no
-- token, and are refused); sent minus the answers is what was still in
-- flight when wrk stopped.
-- Arguments: TOKENS-PREFIX THREADS COOKIE CSRF-TOKEN ORIGIN LOCATIONS
n303, n200, nother, ran_out, sent = 0, 0, 0, 0, 0
local tokens, headers, fixed, locations = {}, nil, nil, nil

local function urlencode(s)
   return (s:gsub("[^%w%-%._~]", function(c)
      return string.format("%%%02X", c:byte())
   end))
end

function init(args)
   local prefix, nthreads = args[1], tonumber(args[2])
   -- Each thread takes every nthreads-th token of all the files.
   local k = 0
   for t = 0, nthreads - 1 do
      local f = io.open(prefix .. "." .. t, "r")
      if f then
         for line in f:lines() do
            if k % nthreads == id then
               tokens[#tokens + 1] = line
            end
            k = k + 1
         end
         f:close()
      end
   end
   locations = assert(io.open(args[6] .. "." .. id, "w"))
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = args[3],
      ["Origin"] = args[5],
   }
   local question = "We run a small bakery and most customers come from " ..
      "word of mouth. A new cafe opened nearby and our weekday takings " ..
      "fell by a fifth. We have about 400 past customers' email " ..
      "addresses and post on Instagram twice a week. What should we try " ..
      "first, and how would we know whether it is working?"
   fixed = "&company=" .. urlencode("Bench Bakes Ltd") ..
      "&website=benchbakes.example&topic=" .. urlencode("Getting customers") ..
      "&question=" .. urlencode(question) .. "&agree=yes&fax=" ..
      "&csrf_token=" .. urlencode(args[4])
end

function request()
   sent = sent + 1
   local tok = take(tokens) or ""
   local body = "name=" .. urlencode("Bench Client " .. id .. "-" .. sent) ..
      "&email=" .. urlencode("bench-" .. id .. "-" .. sent .. "@example.com") ..
      fixed .. "&form_token=" .. tok
   return wrk.format("POST", "/ask", headers, body)
end

function response(status, headers, body)
   if status == 303 then
      n303 = n303 + 1
      locations:write(headers["Location"] or headers["location"] or "", "\n")
   elseif status == 200 then
      n200 = n200 + 1
   else
      nother = nother + 1
   end
end
