#!/bin/sh
# The fake KIE's result media, made ONCE with ffmpeg and committed (the fake never runs ffmpeg):
# a real, playable, short H.264 clip per frame shape and a short MP3. Re-run it from this folder
# to remake them (Debian: apt-get install ffmpeg); the files are small on purpose (tens of KB).
#   clip-16x9.mp4  640x360   4 s, 24 fps, H.264 (yuv420p, +faststart) with a quiet AAC tone
#   clip-9x16.mp4  360x640   the same, portrait
#   clip-1x1.mp4   480x480   the same, square
#   tone.mp3       1.5 s, mono 64 kbit/s: a soft A major chord that fades out (short on purpose: a
#                  text-to-speech result must not play longer than the bot estimated for the shortest text)
set -eu
SECONDS_LONG=4
for shape in 16x9:640x360 9x16:360x640 1x1:480x480; do
  name=${shape%%:*}
  size=${shape#*:}
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=${size}:rate=24:duration=${SECONDS_LONG}" \
    -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=${SECONDS_LONG}" \
    -map 0:v -map 1:a -c:v libx264 -profile:v main -preset veryslow -crf 32 -pix_fmt yuv420p \
    -c:a aac -b:a 32k -ac 1 -af "volume=0.15" -movflags +faststart -shortest \
    -metadata title="TRT demo: fake KIE clip" "clip-${name}.mp4"
done
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=1.5" \
  -f lavfi -i "sine=frequency=554.37:sample_rate=44100:duration=1.5" \
  -f lavfi -i "sine=frequency=659.25:sample_rate=44100:duration=1.5" \
  -filter_complex "[0][1][2]amix=inputs=3,volume=0.6,afade=t=out:st=0.7:d=0.8" \
  -c:a libmp3lame -b:a 64k -ac 1 -metadata title="TRT demo: fake KIE sound" tone.mp3
