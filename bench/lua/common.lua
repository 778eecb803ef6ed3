-- Shared by every row script (loaded with dofile; wrk runs with bench/lua as its directory).
--
-- Environment, set by bench/run.py:
--   BENCH_DATA           a file with one request body (or refresh token) per line
--   BENCH_THREADS        wrk's -t: thread N takes lines N, N + threads, ... of BENCH_DATA
--   BENCH_EXPECT         a Lua pattern every 2xx body must match
--   BENCH_EXPECT_HEADER  a response header (any case) every 2xx response must carry
--
-- Every response is checked: one that is not 2xx, or lacks what the row expects, counts
-- as bad. done() prints one line for bench/report.py:
--   BENCH_RESULT requests=... p50_us=... p99_us=... connect=... status=... bad=...

local threads = {}
local next_id = 0

-- runs in wrk's main Lua state, once per thread, before that thread's init()
function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  threads[#threads + 1] = thread
end

bench = {}

local expect = os.getenv("BENCH_EXPECT")
local expect_header = os.getenv("BENCH_EXPECT_HEADER")
if expect_header then expect_header = string.lower(expect_header) end

function bench.init()
  bad = 0
  starved = 0
  local content_type = os.getenv("BENCH_CONTENT_TYPE")
  if os.getenv("BENCH_METHOD") then wrk.method = os.getenv("BENCH_METHOD") end
  if content_type then wrk.headers["Content-Type"] = content_type end
end

-- this thread's share of BENCH_DATA
function bench.slice()
  local path = assert(os.getenv("BENCH_DATA"), "BENCH_DATA is not set")
  local count = tonumber(os.getenv("BENCH_THREADS") or "1")
  local mine, index = {}, 0
  for line in io.lines(path) do
    if line ~= "" then
      if index % count == thread_id - 1 then mine[#mine + 1] = line end
      index = index + 1
    end
  end
  assert(#mine > 0, "BENCH_DATA has no line for thread " .. thread_id)
  return mine
end

-- true for a 2xx response carrying what the row expects; otherwise counts it as bad
function bench.check(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    return false
  end
  if expect and not string.find(body, expect) then
    bad = bad + 1
    return false
  end
  if expect_header then
    for name, _ in pairs(headers) do
      if string.lower(name) == expect_header then return true end
    end
    bad = bad + 1
    return false
  end
  return true
end

function init(args)
  bench.init()
end

function response(status, headers, body)
  bench.check(status, headers, body)
end

function done(summary, latency, requests)
  local bad_total, starved_total = 0, 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + (thread:get("bad") or 0)
    starved_total = starved_total + (thread:get("starved") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d timeout=%d status=%d bad=%d starved=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status,
    bad_total, starved_total))
end
