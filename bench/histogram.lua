-- wrk script: at the end of a run, writes every request's latency as a histogram to the file
-- named by $WRK_HISTOGRAM, one "microseconds count" line per distinct value. wrk keeps its
-- latencies at 1 µs resolution; `latency(i)` is the i-th non-empty bucket. Defines no
-- request or response hook, so wrk keeps its fast path.
done = function(summary, latency, requests)
  local path = os.getenv("WRK_HISTOGRAM")
  if not path then
    return
  end
  local f = assert(io.open(path, "w"))
  for i = 1, #latency do
    local value, count = latency(i)
    f:write(string.format("%d %d\n", value, count))
  end
  f:close()
end
