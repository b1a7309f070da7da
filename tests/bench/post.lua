-- The request every HTTP scenario sends: the body in the file KK_BENCH_BODY (tests/bench/bodies.py), and
-- for a single-record endpoint a key and two record headers (a batch's records carry their own).
local file = assert(io.open(assert(os.getenv("KK_BENCH_BODY")), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
if os.getenv("KK_BENCH_BATCH") ~= "1" then
  wrk.headers["Message-Key"] = "bench"
  wrk.headers["Message-Headers"] = "source=bench,trace-id=abc-123"
end
