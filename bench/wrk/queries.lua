-- GET the paths listed in the file given after -- (one a line, e.g. /api/orders/<id>), round robin from a random start.
-- Usage: wrk -s queries.lua http://127.0.0.1:PORT -H "Authorization: Token T" -- paths.txt
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local n = 0

function setup(thread)
  n = n + 1
  thread:set("thread_id", n)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do table.insert(paths, line) end
  math.randomseed(os.time() + thread_id * 7919)
  at = math.random(1, #paths)
  headers = common.headers({})
end

function request()
  at = at % #paths + 1
  return wrk.format("GET", paths[at], headers)
end

done = common.done
