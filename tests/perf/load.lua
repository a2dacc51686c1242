-- wrk script for bench.py: many distinct credentials, one JSON line of results.
--
--   wrk -s load.lua URL -- MODE FILE
--
-- MODE bearer:  GET the URL's path with "Authorization: Bearer <line>", lines in turn
-- MODE login:   POST {"username": <line>, "password": <the file's first line>}
-- MODE refresh: POST with a refresh token of the file; each answer's new
--               refresh token replaces the one used, and a token is never
--               in flight twice (a reused refresh token would end its session)
-- Run it with one thread (-t1): one Lua state owns every line.
-- "shed" counts the 503s (what the hashing queue refuses at once), which
-- "failed" leaves out.

local mode, lines, free, next_line = nil, {}, {}, 0
local threads = {}
shed = 0  -- a global of the thread's state, read back by done()

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    table.insert(lines, line)
  end
  if mode == "login" then
    local password = table.remove(lines, 1)
    for position, name in ipairs(lines) do
      lines[position] = '{"username": "' .. name .. '", "password": "' .. password .. '"}'
    end
  end
  free = lines
end

function request()
  if mode == "bearer" then
    next_line = next_line % #lines + 1
    return wrk.format("GET", nil, { Authorization = "Bearer " .. lines[next_line] })
  elseif mode == "login" then
    next_line = next_line % #lines + 1
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, lines[next_line])
  else
    local token = table.remove(free) or "none-left"  -- only after many failures, which are counted
    return wrk.format("POST", nil, { Authorization = "Bearer " .. token })
  end
end

function response(status, headers, body)
  if status == 503 then
    shed = shed + 1
  end
  if mode == "refresh" then
    local token = body:match('"refresh_token": *"([^"]+)"')
    table.insert(free, token)
  end
end

function done(summary, latency, requests)
  local errors, refused = summary.errors, 0
  for _, thread in ipairs(threads) do
    refused = refused + thread:get("shed")
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "failed": %d, "shed": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6,
    errors.status + errors.connect + errors.read + errors.write + errors.timeout - refused, refused,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000
  ))
end
