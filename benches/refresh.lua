-- wrk script for benches/load.sh: the refresh-token grant, each connection following its own
-- rotation chain. $LOAD_REFRESH names a file of refresh tokens (one per line, one per chain, at
-- least one more than connections: wrk's own check of the script takes one, never sent);
-- request() takes a token from the queue, response() puts the token that replaced it back. $LOAD_CLIENT is the (public) client's id. done() prints the same
-- RESULT line as load.lua:
--   RESULT <requests> <duration_us> <p50_us> <p99_us> <socket_errors> <non_2xx_3xx> <max_us>

local queue = {}
local first, last = 1, 0
local client = os.getenv("LOAD_CLIENT")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init(args)
  for line in io.lines(os.getenv("LOAD_REFRESH")) do
    if #line > 0 then
      last = last + 1
      queue[last] = line
    end
  end
end

function request()
  if first > last then
    -- Every chain is in flight or broken (an error answer gives no successor).
    error("no refresh token left: a refresh failed")
  end
  local token = queue[first]
  queue[first] = nil
  first = first + 1
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&client_id=" .. client .. "&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    last = last + 1
    queue[last] = token
  end
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status,
    latency.max))
end
