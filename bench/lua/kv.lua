-- wrk script for the kvs keys API.
-- Arguments: MODE NAMESPACE TOKEN KEYS [BODY_BYTES] [DELAY_MS]
--   MODE: get | put | list | mixed (80% get, 20% put); keys are key000001..keyNNNNNN.
--   qget | qput: quiva.ai's entry GET and PUT (a JSON object); NAMESPACE is then a bucket name.
--   sget | sput | smixed: /v2/secrets GET, PUT (a text value of BODY_BYTES) or 80/20; KEYS
--   is then how many secrets key000001.. there are, and NAMESPACE is unused.
--   ltotal: list, with total=true (a count of every key from the start on: half of them on
--   average).
--   batch: a batch read of 100 random keys. txn: a transaction of 2 checks (the etags of two
--   of key000001..key001000, which copy_keys gave version i and nothing writes) and 2 sets
--   (JSON objects of BODY_BYTES) of two keys above key001000.
--   DELAY_MS: the mean pause before each request on a connection, to offer a lower rate.
local mode, ns, token, nkeys, body, delay_ms

function init(args)
  mode, ns, token, nkeys = args[1], args[2], args[3], tonumber(args[4])
  delay_ms = tonumber(args[6] or "0")
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) + math.random(1e6))
  local size = tonumber(args[5] or "1024")
  local bytes = {}
  for i = 1, size do bytes[i] = string.char(math.random(0, 255)) end
  body = table.concat(bytes)
  if mode == "qput" or mode == "sput" or mode == "smixed" or mode == "txn" then
    local hex = {}
    for i = 1, size - 12 do hex[i] = string.format("%x", math.random(0, 15)) end
    local field = (mode == "sput" or mode == "smixed") and "value" or "data"
    body = '{"' .. field .. '": "' .. table.concat(hex) .. '"}'
  end
end

local function entry_path()
  return string.format("/storage/kv/%s/entries/key%06d", ns, math.random(nkeys))
end

local function secret_path()
  return string.format("/v2/secrets/key%06d", math.random(nkeys))
end

local function key_path()
  return string.format("/v2/storage/kvs/%s/keys/key%06d", ns, math.random(nkeys))
end

local function batch_body()
  local keys = {}
  for i = 1, 100 do keys[i] = string.format('"key%06d"', math.random(nkeys)) end
  return '{"keys": [' .. table.concat(keys, ",") .. ']}'
end

local function txn_body()
  local a, b = math.random(1, 500), math.random(501, 1000)
  local half = math.floor((nkeys + 1000) / 2)
  local c, d = math.random(1001, half), math.random(half + 1, nkeys)
  local check = '{"key": "key%06d", "etag": "\\"%d\\""}'
  local set = '{"op": "set", "key": "key%06d", "data": ' .. body .. '}'
  return '{"checks": [' .. string.format(check, a, a) .. ", " .. string.format(check, b, b)
    .. '], "operations": [' .. string.format(set, c) .. ", " .. string.format(set, d) .. "]}"
end

function request()
  local auth = {["Authorization"] = "Bearer " .. token}
  if mode == "batch" or mode == "txn" then
    auth["Content-Type"] = "application/json"
    local path = string.format("/v2/storage/kvs/%s/%s", ns,
                               mode == "batch" and "batch-read" or "transaction")
    return wrk.format("POST", path, auth, mode == "batch" and batch_body() or txn_body())
  end
  local op = mode
  if mode == "mixed" then op = (math.random() < 0.8) and "get" or "put" end
  if mode == "smixed" then op = (math.random() < 0.8) and "sget" or "sput" end
  if op == "sget" then
    return wrk.format("GET", secret_path(), auth)
  elseif op == "sput" then
    auth["Content-Type"] = "application/json"
    return wrk.format("PUT", secret_path(), auth, body)
  elseif op == "qget" then
    return wrk.format("GET", entry_path(), auth)
  elseif op == "qput" then
    auth["Content-Type"] = "application/json"
    return wrk.format("PUT", entry_path(), auth, body)
  elseif op == "get" then
    return wrk.format("GET", key_path(), auth)
  elseif op == "put" then
    auth["Content-Type"] = "application/octet-stream"
    return wrk.format("PUT", key_path(), auth, body)
  else
    local start = math.random(math.max(nkeys - 100, 1))
    local path = string.format("/v2/storage/kvs/%s/keys?limit=100&start=key%06d", ns, start)
    if op == "ltotal" then path = path .. "&total=true" end
    return wrk.format("GET", path, auth)
  end
end

-- Uniform in [0, 2 x DELAY_MS]: the mean gives the rate, the spread keeps the connections
-- from falling into step and arriving in bursts.
function delay()
  return math.random() * 2 * delay_ms
end
