-- POST /api/commands/register-customer, each request with its own Idempotency-Key (a UUID) and email.
-- Usage: wrk -s commands.lua http://127.0.0.1:PORT -H "Authorization: Token T"
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local threads = {}
local n = 0

function setup(thread)
  n = n + 1
  thread:set("thread_id", n)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_id * 7919 + math.floor(os.clock() * 1e6))
  run = string.format("%08x", math.random(0, 0x7fffffff))
  counter = 0
  headers = common.headers({["Content-Type"] = "application/json"})
end

function request()
  counter = counter + 1
  headers["Idempotency-Key"] = string.format("%s-%04x-4%03x-8%03x-%012x",
    run, thread_id, math.random(0, 0xfff), math.random(0, 0xfff), counter)
  local body = string.format(
    '{"first_name": "Ada", "last_name": "Lovelace", "email": "w%d-%s-%d@bench.example"}', thread_id, run, counter)
  return wrk.format("POST", "/api/commands/register-customer", headers, body)
end

done = common.done
