FROM ray-agent:dev
USER 0
RUN apt-get update && apt-get install -y --no-install-recommends runsc busybox-static && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
USER 1000:1000
