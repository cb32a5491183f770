# A host process's wake-up latency: sleep 1 ms again and again for SECONDS and record how late each wake-up came
# (µs), the measure cyclictest takes (without its real-time priority: an ordinary desktop program's view).
import json
import sys
import time

seconds = float(sys.argv[1])
late = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter_ns()
    time.sleep(0.001)
    late.append((time.perf_counter_ns() - t0) / 1000 - 1000)
late.sort()
p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
print(json.dumps({"count": len(late), "p50": late[len(late) // 2], "p99": p99, "max": late[-1]}))
