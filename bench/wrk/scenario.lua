-- One wrk script for every scenario; the harness (bench/harness.py) sets the environment:
--   BENCH_SCENARIO  list | heavy_first | heavy_page500 | create | toggle | get | warmup
--   BENCH_CONNECTIONS_PER_THREAD  (warmup) wrk's connections per thread
--   BENCH_TOKENS    file of "<token> <task id>" lines, one per benchmark user (1,000 users)
--   BENCH_HEAVY     file holding the heavy user's token (heavy_* scenarios)
--   BENCH_CURSOR    the cursor of the heavy user's page 500 (heavy_page500)
-- Each request picks a random line, so a random user (and one of that user's tasks).
local scenario = os.getenv("BENCH_SCENARIO")
local tokens, task_ids = {}, {}
local heavy_token, cursor = nil, os.getenv("BENCH_CURSOR")
local threads_set_up = 0

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  return lines
end

function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_no", threads_set_up)  -- a global of that thread's own Lua state
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) + math.floor(os.clock() * 1000000))
  for _, line in ipairs(read_lines(os.getenv("BENCH_TOKENS"))) do
    local token, task_id = line:match("^(%S+)%s+(%d+)$")
    tokens[#tokens + 1] = token
    task_ids[#task_ids + 1] = task_id
  end
  local heavy = os.getenv("BENCH_HEAVY")
  if heavy and heavy ~= "" then heavy_token = read_lines(heavy)[1] end
end

local json_headers = {["Content-Type"] = "application/json"}

local sent = 0
local per_thread = tonumber(os.getenv("BENCH_CONNECTIONS_PER_THREAD") or "1")

function request()
  local i = math.random(#tokens)
  if scenario == "warmup" then
    -- Every user in turn, each sent once per connection of this thread (the harness runs one
    -- connection per thread): keep-alive connections stay with one worker, so every worker
    -- holding a connection meets (and provisions, once) every user.
    sent = sent + 1
    i = (math.floor((sent - 1) / per_thread) % #tokens) + 1
    return wrk.format("GET", "/api/tasks/" .. task_ids[i], {["Authorization"] = "Bearer " .. tokens[i]})
  elseif scenario == "list" then
    return wrk.format("GET", "/api/tasks?limit=20", {["Authorization"] = "Bearer " .. tokens[i]})
  elseif scenario == "heavy_first" then
    return wrk.format("GET", "/api/tasks?limit=20", {["Authorization"] = "Bearer " .. heavy_token})
  elseif scenario == "heavy_page500" then
    return wrk.format("GET", "/api/tasks?limit=20&cursor=" .. cursor,
                      {["Authorization"] = "Bearer " .. heavy_token})
  elseif scenario == "create" then
    json_headers["Authorization"] = "Bearer " .. tokens[i]
    return wrk.format("POST", "/api/tasks", json_headers, '{"title":"benchmark task"}')
  elseif scenario == "toggle" then
    return wrk.format("PATCH", "/api/tasks/" .. task_ids[i] .. "/complete",
                      {["Authorization"] = "Bearer " .. tokens[i]})
  elseif scenario == "get" then
    return wrk.format("GET", "/api/tasks/" .. task_ids[i], {["Authorization"] = "Bearer " .. tokens[i]})
  end
  error("unknown BENCH_SCENARIO " .. tostring(scenario))
end

if scenario == "warmup" then
  -- Stop this thread once every user went over each of its connections (defined only for the
  -- warm-up: a response() function makes wrk parse every response).
  -- wrk itself runs to its duration, so each thread leaves a marker in BENCH_WARM_DIR and the
  -- harness ends wrk once every thread has left one.
  local answered = 0
  function response(status, headers, body)
    answered = answered + 1
    if answered == #tokens * per_thread then
      local marker = io.open(os.getenv("BENCH_WARM_DIR") .. "/done-" .. tostring(thread_no), "w")
      marker:close()
      wrk.thread:stop()
    end
  end
end

-- One JSON line the harness parses: counts, rate and latency percentiles (microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_RESULT {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
