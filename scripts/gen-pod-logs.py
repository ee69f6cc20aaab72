# Generates a kubelet-layout tree of CRI lines for a throughput baseline:
# 20 pods, mixed vLLM request/access/stats lines of realistic length, current timestamps;
# requests are received and finished (a few stay open), as a serving engine logs them.
import os, sys, time, random
root, total = sys.argv[1], int(sys.argv[2])
random.seed(1)
pods = 20
files = []
for p in range(pods):
    d = os.path.join(root, f"llm-serving_vllm-{p}_uid-{p:04d}", "vllm")
    os.makedirs(d, exist_ok=True)
    files.append(open(os.path.join(d, "0.log"), "w"))
t0 = time.time() - 600
nbytes = 0
open_ids = [[] for _ in range(pods)]
for i in range(total):
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 0.0005)) + ".%09dZ" % (i % 1000000000)
    k = i % 10
    pod = (i // 10) % pods
    if 4 <= k <= 5 and open_ids[pod]:
        # Requests end too, oldest first, so the lifecycle table stays at its real size.
        rid = open_ids[pod].pop(0)
        msg = f"(APIServer pid=1) INFO 11-27 20:41:08 [async_llm.py:271] Finished request {rid}."
    elif k == 0:
        msg = f"(APIServer pid=1) INFO 11-27 20:41:07 [loggers.py:271] Engine 000: Avg prompt throughput: {random.random()*3000:.1f} tokens/s, Avg generation throughput: {random.random()*900:.1f} tokens/s, Running: {i%30} reqs, Waiting: {i%7} reqs, GPU KV cache usage: {random.random()*100:.1f}%, Prefix cache hit rate: 0.0%"
    elif k < 6:
        msg = f"(APIServer pid=1) INFO 11-27 20:41:07 [logger.py:49] Received request chatcmpl-{i:016x}: params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens=512)"
        if k < 4:
            open_ids[pod].append(f"chatcmpl-{i:016x}")
    else:
        msg = f'(APIServer pid=1) INFO:     10.42.0.{i%250}:{30000+i%30000} - "POST /v1/chat/completions HTTP/1.1" 200 OK'
    line = f"{ts} stdout F {msg} seq={i}\n"
    nbytes += len(line)
    files[pod].write(line)
for f in files: f.close()
print(nbytes)
