-- GET the URL's path as it is (the /livez floor: gunicorn and Django with no view work), summarised as JSON.
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local common = require("common")
done = common.done
