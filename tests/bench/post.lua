-- The request every HTTP scenario sends: the seed's sample body, a key and two record headers.
wrk.method = "POST"
wrk.body = '{"some_message":"benchmark payload"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Message-Key"] = "bench"
wrk.headers["Message-Headers"] = "source=bench,trace-id=abc-123"
