-- wrk script for benches/load.sh: POSTs the body in $LOAD_BODY with the headers given by -H,
-- and, when $LOAD_TOKENS names a file of tokens (one per line), an Authorization header that
-- cycles through them. Every request string is built once in init(), so the per-request cost
-- on the load generator is the same whether there is one token or thousands.
-- done() prints one machine-readable line for the script:
--   RESULT <requests> <duration_us> <p50_us> <p99_us> <socket_errors> <non_2xx_3xx> <max_us>

local requests = {}
local next_request = 0

wrk.method = "POST"
wrk.body = os.getenv("LOAD_BODY")

function init(args)
  local tokens = {}
  local file = os.getenv("LOAD_TOKENS")
  if file ~= nil and file ~= "" then
    for line in io.lines(file) do
      if #line > 0 then
        tokens[#tokens + 1] = line
      end
    end
  end
  if #tokens == 0 then
    requests[1] = wrk.format()
    return
  end
  for i, token in ipairs(tokens) do
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    headers["Authorization"] = "Bearer " .. token
    requests[i] = wrk.format(nil, nil, headers)
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status,
    latency.max))
end
