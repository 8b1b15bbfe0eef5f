-- GET /api/customers/<id> over the customer ids in the file given after --, round robin from a random start.
-- Usage: wrk -s queries.lua http://127.0.0.1:PORT -H "Authorization: Token T" -- ids.txt
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local n = 0

function setup(thread)
  n = n + 1
  thread:set("thread_id", n)
end

function init(args)
  ids = {}
  for line in io.lines(args[1]) do table.insert(ids, line) end
  math.randomseed(os.time() + thread_id * 7919)
  at = math.random(1, #ids)
  headers = common.headers({})
end

function request()
  at = at % #ids + 1
  return wrk.format("GET", "/api/customers/" .. ids[at], headers)
end

done = common.done
