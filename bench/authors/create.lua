-- wrk: POST a new author per request (unique names per thread and counter).
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  prefix = "bench-" .. tostring(id) .. "-" .. tostring(os.time()) .. "-"
end

request = function()
  counter = counter + 1
  local body = '{"name":"' .. prefix .. counter .. '","bio":"A bio of a benchmark author."}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
