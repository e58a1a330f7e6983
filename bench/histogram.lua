-- wrk script: at the end of a run, writes every request's latency as a histogram to the file
-- named by $WRK_HISTOGRAM, one "microseconds count" line per distinct value. wrk keeps its
-- latencies at 1 µs resolution; `latency(i)` is the i-th non-empty bucket. Defines no
-- request or response hook, so wrk keeps its fast path.
--
-- With $WRK_PAUSE set to a probability P (0 to 1), each connection pauses 1 ms before a
-- request with probability P (wrk's delays are whole milliseconds): an average pause of P ms,
-- for a load below what the server can take.
local pause = tonumber(os.getenv("WRK_PAUSE") or "")
if pause and pause > 0 then
  math.randomseed(os.time())
  delay = function()
    if math.random() < pause then
      return 1
    end
    return 0
  end
end
done = function(summary, latency, requests)
  local path = os.getenv("WRK_HISTOGRAM")
  if not path or path == "" then
    return
  end
  local f = assert(io.open(path, "w"))
  for i = 1, #latency do
    local value, count = latency(i)
    f:write(string.format("%d %d\n", value, count))
  end
  f:close()
end
