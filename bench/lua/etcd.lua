-- wrk script for etcd's v3 JSON gateway. Arguments: MODE (range | put) KEYS [BODY_BYTES]
-- Keys and values are base64, as the gateway wants.
local mode, nkeys, value64

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({"", "==", "="})[#data % 3 + 1])
end

function init(args)
  mode, nkeys = args[1], tonumber(args[2])
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6))
  local bytes = {}
  for i = 1, tonumber(args[3] or "1024") do bytes[i] = string.char(math.random(0, 255)) end
  value64 = base64(table.concat(bytes))
end

function request()
  local key = base64(string.format("key%06d", math.random(nkeys)))
  local headers = {["Content-Type"] = "application/json"}
  if mode == "range" then
    return wrk.format("POST", "/v3/kv/range", headers, '{"key":"' .. key .. '"}')
  end
  return wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. key .. '","value":"' .. value64 .. '"}')
end
