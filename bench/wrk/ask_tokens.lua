-- ask_tokens.lua: GET /ask, keeping the one-time form token of every form
-- served: each thread appends them to PREFIX.ID, one a line, for the
-- POST /ask run that follows. Arguments: PREFIX.
n200, nother = 0, 0
local out

function init(args)
   out = assert(io.open(args[1] .. "." .. id, "w"))
end

function response(status, headers, body)
   local tok = status == 200 and
      body:match('name="form_token" value="([%w_%-]+)"')
   if tok then
      n200 = n200 + 1
      out:write(tok, "\n")
   else
      nother = nother + 1
   end
end
