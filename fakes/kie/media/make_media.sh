#!/bin/sh
# The fake KIE's result media, made ONCE with ffmpeg and committed (the fake never runs ffmpeg):
# a real, playable, short H.264 clip per frame shape and a short MP3. Re-run it from this folder
# to remake them (Debian: apt-get install ffmpeg); the files are small on purpose (tens of KB).
#   clip-16x9.mp4  640x360   4 s, 24 fps, H.264 (yuv420p, +faststart) with a quiet AAC tone
#   clip-9x16.mp4  360x640   the same, portrait
#   clip-1x1.mp4   480x480   the same, square
#   tone.mp3       1.5 s, mono 64 kbit/s: a soft A major chord that fades out (short on purpose: a
#                  text-to-speech result must not play longer than the bot estimated for the shortest text)
#   song-a.mp3     6 s, mono 48 kbit/s: a plucked four-note tune on C (the first of a Suno task's two songs)
#   song-b.mp3     5 s, the same on A, a three-note tune (the second song: distinct bytes and length)
#   cover-a.jpg    320x320 JPEG (a Telegram thumbnail: <= 320 px, <= 200 kB), a radial gradient (song A's cover)
#   cover-b.jpg    320x320 JPEG (a Telegram thumbnail: <= 320 px, <= 200 kB), a linear gradient (song B's cover)
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
# Suno's two songs and their covers (aevalsrc: a note a beat, decaying; see the header for shapes)
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "aevalsrc='0.3*sin(2*PI*t*261.63*(1+0.25*eq(mod(floor(t*2),4),1)+0.5*eq(mod(floor(t*2),4),2)+gte(mod(floor(t*2),4),3)))*(1-0.7*mod(t*2,1))':s=44100:d=6" \
  -af "afade=t=in:d=0.05,afade=t=out:st=5:d=1" -c:a libmp3lame -b:a 48k -ac 1 \
  -metadata title="TRT demo: fake Suno song A" song-a.mp3
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "aevalsrc='0.3*sin(2*PI*t*220*(1+0.2*eq(mod(floor(t*3),3),1)+0.5*eq(mod(floor(t*3),3),2)))*(1-0.6*mod(t*3,1))':s=44100:d=5" \
  -af "afade=t=in:d=0.05,afade=t=out:st=4:d=1" -c:a libmp3lame -b:a 48k -ac 1 \
  -metadata title="TRT demo: fake Suno song B" song-b.mp3
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "gradients=s=320x320:c0=0x3a1c71:c1=0xd76d77:c2=0xffaf7b:n=3:type=radial:seed=7" -frames:v 1 -q:v 6 cover-a.jpg
ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "gradients=s=320x320:c0=0x0f2027:c1=0x2c5364:c2=0x6dd5ed:n=3:seed=11" -frames:v 1 -q:v 6 cover-b.jpg
