-- wrk: POST a new author per request (unique names per thread and counter).
-- wrk.format() sends only the headers it is given: the -H ones (the token) are merged in.
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
  local headers = {["Content-Type"] = "application/json"}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  return wrk.format("POST", nil, headers, body)
end
