-- One wrk script for every scenario; the harness (bench/load.py) describes the scenario's request
-- in the environment, from bench/scenarios.py:
--   BENCH_METHOD, BENCH_PATH ({task}: the task's id), BENCH_BODY (JSON, or empty)
--   BENCH_WHO       user (a random benchmark user and its oldest task) | heavy | pool | warmup
--   BENCH_TOKENS    file of "<token> <task id>" lines, one per benchmark user (1,000 users)
--   BENCH_HEAVY     file holding the heavy user's token
--   BENCH_POOL      (pool) file of "<token> <task id>" lines: fresh recurring tasks, shuffled
--   BENCH_THREADS   wrk's threads (pool: thread t takes lines t, t + threads, ...)
--   BENCH_CONNECTIONS_PER_THREAD  (warmup) wrk's connections per thread
local who = os.getenv("BENCH_WHO")
local method, path = os.getenv("BENCH_METHOD") or "GET", os.getenv("BENCH_PATH") or "/api/tasks"
local body = os.getenv("BENCH_BODY")
if body == "" then body = nil end
local tokens, task_ids = {}, {}
local pool_tokens, pool_ids = {}, {}
local heavy_token = nil
local threads_set_up = 0

local function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  return lines
end

local function read_pairs(path, first, second)
  for _, line in ipairs(read_lines(path)) do
    local token, task_id = line:match("^(%S+)%s+(%d+)$")
    first[#first + 1] = token
    second[#second + 1] = task_id
  end
end

function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_no", threads_set_up)  -- a global of that thread's own Lua state
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) + math.floor(os.clock() * 1000000))
  read_pairs(os.getenv("BENCH_TOKENS"), tokens, task_ids)
  local heavy = os.getenv("BENCH_HEAVY")
  if heavy and heavy ~= "" then heavy_token = read_lines(heavy)[1] end
  local pool = os.getenv("BENCH_POOL")
  if who == "pool" then read_pairs(pool, pool_tokens, pool_ids) end
end

local sent = 0
local per_thread = tonumber(os.getenv("BENCH_CONNECTIONS_PER_THREAD") or "1")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")

function request()
  local token, task_id
  sent = sent + 1
  if who == "warmup" then
    -- Every user in turn, each sent once per connection of this thread (the harness runs one
    -- connection per thread): keep-alive connections stay with one worker, so every worker
    -- holding a connection meets (and provisions, once) every user.
    local i = (math.floor((sent - 1) / per_thread) % #tokens) + 1
    return wrk.format("GET", "/api/tasks/" .. task_ids[i], {["Authorization"] = "Bearer " .. tokens[i]})
  elseif who == "heavy" then
    token, task_id = heavy_token, ""
  elseif who == "pool" then
    -- Each request its own task: this thread's share of the pool, in turn (the harness makes
    -- the pool larger than a run's requests and resets it between runs).
    local i = ((thread_no - 1) + (sent - 1) * threads) % #pool_ids + 1
    token, task_id = pool_tokens[i], pool_ids[i]
  else
    local i = math.random(#tokens)
    token, task_id = tokens[i], task_ids[i]
  end
  local headers = {["Authorization"] = "Bearer " .. token}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, (path:gsub("{task}", task_id)), headers, body)
end

if who == "warmup" then
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
