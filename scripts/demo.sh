#!/usr/bin/env bash
# The newcomer's demo: no configuration at all. Generates a clip, enqueues it, runs the
# worker until the queue is empty and shows the job and where its outputs are.
source "$(dirname "$0")/bootstrap.sh" requirements.txt
mkdir -p demo-output
echo ">> generating a 5 s sample clip with ffmpeg" >&2
ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=5" \
  -f lavfi -i "sine=frequency=440:duration=5" -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
  -c:a aac -shortest demo-output/sample.mp4
echo ">> enqueueing a video.process job" >&2
job_id=$(.venv/bin/python worker.py enqueue video.process --input demo-output/sample.mp4)
echo ">> running the worker until the queue is empty" >&2
.venv/bin/python worker.py run --until-idle
.venv/bin/python worker.py jobs show "$job_id"
echo
echo "Outputs are in: ${WORKER_DATA_DIR:-.data}/storage/media-outputs/anonymous/$job_id/"
ls -l "${WORKER_DATA_DIR:-.data}/storage/media-outputs/anonymous/$job_id/"
