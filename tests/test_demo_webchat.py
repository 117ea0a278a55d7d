"""The demo web chat in a real browser: `run.py demo` as a process, its page in headless chromium
at a phone's size, playing a Telegram user against the real bot through the fake Telegram.

The page's user presses the buttons the bot sent (found by their callback_data, as the scripted
user and tests/test_generation_e2e.py do) and types or uploads what each wizard step asks, and
every wait is a bounded wait for what the page shows: /start shows the menu, a button leads to
the family's page, a text-to-image generation ends with its picture loaded on the page, and a
photo from disk reaches the bot as a photo (the wizard takes it, and the jobs actor fetches that
very file through the Bot API to send it to KIE), and a talking avatar takes a photo and a WAV
from disk whose 3 s the confirmation prices. DEMO_SCREENSHOT=<path> keeps the picture of the
finished generation (the README's docs/demo.png is one), and <path stem>-avatar.png the avatar's
confirmation with the user's sound in the chat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from bot import flow, keyboards, texts
from catalog.loader import shipped
from catalog.model import Model
from catalog.pricing import user_price_kopecks
from config import Settings
from tests.browser import need_chromium, phone_browser
from tests.procs import TrtProcess, eventually, free_port
from tests.test_media_length import wav

pytestmark = pytest.mark.timeout(600)  # room for apt-get to install chromium first; the tests take ~1 min
LANG = "en"
CATALOG = shipped()
PROMPT = "A lighthouse on a cliff at sunset, watercolor"
SCREEN_SECONDS = 30
RESULT_SECONDS = 90
AVATAR = "kling/ai-avatar-standard"  # a photo, then a sound of at most 15 s priced by the second


def t(key: str, **values: Any) -> str:
    return texts.t(LANG, key, **values)


def png(width: int, height: int) -> bytes:
    """A real PNG with a gradient: the user's photo from disk."""
    raw = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                   for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Chat:
    """The page in the browser, read and used as a person would: the newest bot message with
    buttons is the screen; each action waits, within a bound, for the next screen."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = lambda seconds: WebDriverWait(driver, seconds, poll_frequency=0.1)

    def screen(self) -> dict[str, Any] | None:
        """The newest bot message with buttons: its id, revision, text and each button's data."""
        found: dict[str, Any] | None = self.driver.execute_script("""
            const screens = [...document.querySelectorAll('.msg.bot')].filter(m => m.querySelector('.kb-btn'));
            const last = screens[screens.length - 1];
            if (!last) return null;
            return {id: Number(last.dataset.messageId), rev: Number(last.dataset.rev),
                    text: (last.querySelector('.text') || {}).textContent || '',
                    data: [...last.querySelectorAll('[data-callback]')].map(b => b.dataset.callback),
                    labels: [...last.querySelectorAll('[data-callback]')].map(b => b.textContent)};
        """)
        return found

    def next_screen(self, before: dict[str, Any] | None, expect: str | None, what: str,
                    seconds: float = SCREEN_SECONDS) -> dict[str, Any]:
        def arrived(_: Any) -> dict[str, Any] | None:
            now = self.screen()
            if now is None or (before is not None and (now["id"], now["rev"]) <= (before["id"], before["rev"])):
                return None
            return now if expect is None or expect in now["text"] else None
        try:
            found: dict[str, Any] = self.wait(seconds).until(arrived)
        except Exception as exc:
            raise AssertionError(f"no {what} within {seconds} s; the screen: {self.screen()}") from exc
        return found

    def act(self, action: Callable[[], None], expect: str | None, what: str, seconds: float = SCREEN_SECONDS
            ) -> dict[str, Any]:
        before = self.screen()
        action()
        return self.next_screen(before, expect, what, seconds)

    def say(self, text: str, expect: str | None = None) -> dict[str, Any]:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        return self.act(lambda: self.driver.find_element(By.ID, "text").send_keys(text + Keys.ENTER), expect,
                        f"answer to {text!r}")

    def press(self, data: str, expect: str | None = None, seconds: float = SCREEN_SECONDS) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        buttons = self.driver.find_elements(By.CSS_SELECTOR, f'.kb-btn[data-callback="{data}"]')
        assert buttons, f"no button {data!r} on the page"
        return self.act(buttons[-1].click, expect, f"answer to pressing {data!r}", seconds)  # the newest, as people do

    def send_photo(self, path: Path, expect: str) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        return self.act(lambda: self.driver.find_element(By.ID, "photo").send_keys(str(path)), expect,
                        "answer to the photo")

    def send_sound(self, path: Path, expect: str, voice: bool = False) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        control = "voice" if voice else "audio"
        return self.act(lambda: self.driver.find_element(By.ID, control).send_keys(str(path)), expect,
                        f"answer to the {control}")


def action(screen: dict[str, Any], name: str) -> str:
    """A wizard button's data by its action (w:<nonce>:<action>[:arg])."""
    found = [d for d in screen["data"] if d.startswith(keyboards.STEP) and d.split(":")[2] == name]
    assert found, f"no {name!r} button on the screen: {screen}"
    return found[0]


def option(screen: dict[str, Any]) -> str:
    """A wizard step's option: the one marked as chosen, else the first."""
    options = [(label, d) for label, d in zip(screen["labels"], screen["data"], strict=True)
               if d.startswith(keyboards.STEP) and d.split(":")[2] in ("o", "b")]
    assert options, f"no options on the screen: {screen}"
    return next((d for label, d in options if label.startswith("✓")), options[0][1])


def to_confirmation(chat: Chat, family: str, photo: Path | None = None, sound: Path | None = None,
                    model_id: str | None = None) -> tuple[Model, dict[str, Any]]:
    """/start -> the family -> its model (``model_id``, else the first listed) -> Start -> every
    step answered -> the confirmation; the model and the confirmation's screen."""
    menu = chat.say("/start", expect=t("welcome", name="Guest"))
    assert keyboards.MENU_BALANCE in menu["data"], f"/start shows the menu: {menu}"
    page = chat.press(keyboards.family_data(family), expect=None)
    models = [d for d in page["data"] if d.startswith(keyboards.MODEL)]
    assert models, f"the family's page lists models: {page}"
    chosen = keyboards.model_data(model_id) if model_id else models[0]
    assert chosen in models, f"{model_id} is on the family's page: {page}"
    model = CATALOG.model(chosen.removeprefix(keyboards.MODEL))
    card = chat.press(chosen, expect=model.title.get(LANG))
    steps = flow.asked(model)
    screen = chat.press(keyboards.start_data(model.id), expect=None) if card else card
    for index, item in enumerate(steps):
        header = t("step_header", model=model.title.get(LANG), step=index + 1, steps=len(steps))
        assert header in screen["text"], f"step {index + 1} ({item.name}) expected: {screen}"
        following = (t("step_header", model=model.title.get(LANG), step=index + 2, steps=len(steps))
                     if index + 1 < len(steps) else t("confirm_header"))
        if not item.required:
            screen = chat.press(action(screen, "skip"), expect=following)
        elif item.kind in ("prompt", "text"):
            screen = chat.say(PROMPT, expect=following)
        elif item.kind in ("enum", "bool"):
            screen = chat.press(option(screen), expect=following)
        elif item.kind == "image" and photo is not None:
            if item.array:
                screen = chat.send_photo(photo, expect=t("file_received", count=1, most=item.max_items))
                screen = chat.press(action(screen, "done"), expect=following)
            else:
                screen = chat.send_photo(photo, expect=following)
        elif item.kind == "audio" and sound is not None and not item.array:
            screen = chat.send_sound(sound, expect=following)
        else:
            raise AssertionError(f"this test does not answer a field of kind {item.kind}")
    assert t("confirm_header") in screen["text"], f"the confirmation expected: {screen}"
    return model, screen


def generate(chat: Chat, family: str, photo: Path | None = None) -> str:
    """:func:`to_confirmation` -> Confirm -> the result on the page; the model's id."""
    model, screen = to_confirmation(chat, family, photo)
    chat.press(action(screen, "ok"), expect=None, seconds=RESULT_SECONDS)  # the status message comes first

    def result(driver: Any) -> bool:
        return bool(driver.execute_script("""
            if (!document.querySelector('.msg.bot [data-callback^="gen:again:"]')) return false;
            const pictures = document.querySelectorAll('.msg.bot img.photo');  // then its file, with Again
            const img = pictures[pictures.length - 1];
            return Boolean(img && img.complete && img.naturalWidth > 0);
        """))
    try:
        chat.wait(RESULT_SECONDS).until(result)
    except Exception as exc:
        raise AssertionError(f"no picture with Again on the page within {RESULT_SECONDS} s: {chat.screen()}") from exc
    return model.id


async def demo(spawn: Any, database_url: str) -> tuple[TrtProcess, str]:
    """`run.py demo`, healthy, and its web chat's address as it printed it."""
    proc: TrtProcess = spawn({"DATABASE_URL": database_url, "DEMO_TELEGRAM_PORT": str(free_port()),
                              "DEMO_KIE_PORT": str(free_port())}, command="demo")
    await proc.wait_healthy()

    async def ready() -> dict[str, Any] | None:
        return next((line for line in proc.log_lines() if line.get("event") == "demo_ready"), None)
    line = await eventually(ready, 60, "the demo_ready line", interval=0.2)
    url = str(line["web_chat"])
    assert url.startswith("http://127.0.0.1:") and url.endswith("/demo")
    assert f"chat with the bot in a browser at {url}" in proc.log_text(), "a newcomer sees the address on stdout"
    return proc, url


def browse(tmp_path: Path, url: str, work: Callable[[Chat], Any]) -> Any:
    """Open the page on a phone-sized screen and run `work` on it; the browser ends either way."""
    driver = phone_browser(tmp_path / "chromium-profile")
    try:
        driver.set_page_load_timeout(30)
        driver.get(url)
        width = driver.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert width[0] == 390, f"a phone's width expected, the page has {width[0]} px"
        return work(Chat(driver))
    finally:
        driver.quit()


def fits_the_phone(chat: Chat) -> None:
    sizes = chat.driver.execute_script("""
        const box = document.getElementById('composer').getBoundingClientRect();
        return {inner: innerWidth, scroll: document.documentElement.scrollWidth, composerBottom: box.bottom,
                height: innerHeight, widest: Math.max(...[...document.querySelectorAll('.msg')]
                  .map(m => m.getBoundingClientRect().right))};
    """)
    assert sizes["scroll"] <= sizes["inner"] and sizes["widest"] <= sizes["inner"], f"nothing wider: {sizes}"
    assert sizes["composerBottom"] <= sizes["height"], f"the message field is on the screen: {sizes}"


async def test_a_whole_generation_in_the_web_chat_ends_with_the_picture(
        tmp_path: Path, spawn: Any, database_url: str) -> None:
    need_chromium()
    proc, url = await demo(spawn, database_url)

    def work(chat: Chat) -> str:
        from selenium.webdriver.common.by import By

        chat.wait(SCREEN_SECONDS).until(lambda d: d.find_element(By.ID, "start").is_displayed())
        model = generate(chat, "text_to_image")
        fits_the_phone(chat)

        def status_done(_: Any) -> bool:  # its last word comes right after the files
            statuses = [text for _, text in bot_texts(chat) if text.startswith(STATUS_MARKS)]
            return bool(statuses) and all(text.startswith("✅ #") for text in statuses)
        chat.wait(SCREEN_SECONDS).until(status_done)
        shot = tmp_path / "demo.png"
        chat.driver.save_screenshot(str(shot))  # the finished generation, as the user sees it
        if os.environ.get("DEMO_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["DEMO_SCREENSHOT"])
        # what the user typed is shown as text, never run or rendered as markup
        hostile = '<img src=x onerror="document.title=\'pwned\'"><b>not bold</b>'
        chat.driver.find_element(By.ID, "text").send_keys(hostile + "\n")
        last_said = "const m = document.querySelectorAll('.msg.mine .text'); return m.length && m[m.length-1].innerText"
        chat.wait(SCREEN_SECONDS).until(lambda d: d.execute_script(last_said) == hostile)
        assert chat.driver.execute_script(
            "return document.querySelectorAll('.msg img:not(.photo), .msg.mine .text b').length") == 0
        assert chat.driver.title == "TRT demo chat"
        return model

    model = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    delivered = [line for line in proc.log_lines() if line.get("event") == "job_delivered"]
    assert any(line.get("model") == model for line in delivered), "the page's job was delivered by the jobs actor"
    assert "TRT-demo-token" not in proc.log_text()


async def test_a_photo_from_disk_reaches_the_bot_as_a_photo(tmp_path: Path, spawn: Any, database_url: str) -> None:
    need_chromium()
    proc, url = await demo(spawn, database_url)
    picture = tmp_path / "my photo.png"
    picture.write_bytes(png(96, 64))

    def work(chat: Chat) -> str:
        generate(chat, "image_edit", photo=picture)
        src: str = chat.driver.execute_script("""
            const mine = document.querySelector('.msg.mine img.photo');
            return mine && mine.complete && mine.naturalWidth === 96 ? mine.getAttribute('src') : '';""")
        assert src.startswith("/demo/api/file/"), "the user's photo is in the chat, loaded from the fake's file store"
        return unquote(src.removeprefix("/demo/api/file/"))

    file_id = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    telegram = url.removesuffix("/demo")
    async with aiohttp.ClientSession() as session, session.get(f"{telegram}/_fake/calls?method=getFile") as response:
        calls = await response.json()
    assert file_id in [call["params"].get("file_id") for call in calls], \
        "the bot fetched the user's photo through the Bot API to send it to KIE"
    async with aiohttp.ClientSession() as session, session.get(f"{telegram}/_fake/calls?method=sendPhoto") as response:
        sent = [call for call in await response.json() if call["params"].get("chat_id") == 1002]
    assert sent, "the edited picture came back to the page's chat"
    assert proc.proc is not None and proc.proc.poll() is None


async def test_a_talking_avatar_takes_a_photo_and_a_sound_from_disk_and_prices_their_seconds(
        tmp_path: Path, spawn: Any, database_url: str) -> None:
    need_chromium()
    proc, url = await demo(spawn, database_url)
    picture = tmp_path / "face.png"
    picture.write_bytes(png(96, 96))
    sound = tmp_path / "my voice.wav"
    sound.write_bytes(wav(3))
    model = CATALOG.model(AVATAR)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}  # the demo keeps the default prices
    price = texts.money(LANG, user_price_kopecks(model.credits({}, {"audio_url": 3.0}),
                                                 defaults["price_kopecks_per_credit"], defaults["price_markup"]))
    one_second = texts.money(LANG, user_price_kopecks(model.credits({}, {"audio_url": 1.0}),
                                                      defaults["price_kopecks_per_credit"], defaults["price_markup"]))
    assert price not in (one_second, texts.money(LANG, 0)), "3 s cost more than 1 s and more than nothing"

    def work(chat: Chat) -> dict[str, Any]:
        _, screen = to_confirmation(chat, "avatar", photo=picture, sound=sound, model_id=AVATAR)
        assert price in screen["text"] and t("confirm_price", price=texts.money(LANG, 0)) not in screen["text"], \
            f"the confirmation prices the 3 s the user sent: {screen['text']}"
        mine: dict[str, Any] = chat.driver.execute_script("""
            const box = document.querySelector('.msg.mine .media.audio');
            const player = box && box.querySelector('audio[controls]');
            return {player: Boolean(player), src: player ? player.getAttribute('src') : '',
                    label: box ? box.querySelector('.file-name').textContent : '',
                    length: box ? box.querySelector('.duration').textContent : ''};""")
        fits_the_phone(chat)
        if os.environ.get("DEMO_SCREENSHOT"):
            shot = Path(os.environ["DEMO_SCREENSHOT"])
            chat.driver.save_screenshot(str(shot.with_name(shot.stem + "-avatar" + (shot.suffix or ".png"))))
        return mine

    mine = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    assert mine["player"] and mine["src"].startswith("/demo/api/file/"), f"the user's own sound is in the chat: {mine}"
    assert mine["label"] == "🎵 my voice.wav" and mine["length"] == "0:03", "sent with the length it plays"
    assert proc.proc is not None and proc.proc.poll() is None


async def test_a_newcomer_pays_with_stars_a_friend_follows_the_invitation_and_the_admin_opens_the_panel(
        tmp_path: Path, spawn: Any, database_url: str) -> None:
    """Issue 18 in the page, without a token: Top up -> a pack -> Pay (the fake plays the
    pre-checkout the bot confirms and the payment) -> credited; the invitation link opens a new
    user's chat that starts with it; /demo/?chat=1000 is an admin and /admin opens the panel."""
    need_chromium()
    proc, url = await demo(spawn, database_url)

    def work(chat: Chat) -> tuple[str, str]:
        from selenium.webdriver.common.by import By

        chat.wait(SCREEN_SECONDS).until(lambda d: d.find_element(By.ID, "start").is_displayed())
        chat.say("/topup", expect="⭐")
        chat.press("st:buy:100", expect=None)
        chat.wait(SCREEN_SECONDS).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".kb-btn.pay"))
        chat.driver.find_elements(By.CSS_SELECTOR, ".kb-btn.pay")[-1].click()
        paid = texts.t("en", "credited_stars", amount=texts.money("en", 100 * 150), balance="")[:-1]
        chat.wait(SCREEN_SECONDS).until(lambda d: paid in d.find_element(By.ID, "messages").text)
        fits_the_phone(chat)
        chat.say("/invite", expect="start=ref_")
        link = chat.driver.execute_script(
            "const a=[...document.querySelectorAll('.msg.bot a')].filter(a=>a.href.includes('start=ref_'));"
            "return a[a.length-1].href")
        start = link.split("start=", 1)[1]
        chat.driver.get(url + f"?chat=3001&lang=en&start={start}")  # where the link's click leads
        welcome = texts.t("en", "welcome", name="Guest").splitlines()[0]
        chat.wait(SCREEN_SECONDS).until(lambda d: welcome in d.find_element(By.ID, "messages").text)
        assert f"/start {start}" in chat.driver.find_element(By.ID, "messages").text
        chat.driver.get(url + "?chat=1000&lang=en")
        chat.wait(SCREEN_SECONDS).until(lambda d: d.find_element(By.ID, "text").is_displayed())
        panel = chat.say("/admin", expect=texts.t("en", "adm_menu").splitlines()[0])
        return link, panel["text"]

    link, panel = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    assert link.startswith("https://t.me/trt_demo_bot?start=ref_") and panel
    assert any(line.get("event") == "stars_invoice_sent" for line in proc.log_lines())


async def test_a_video_result_plays_in_the_browser(tmp_path: Path, spawn: Any, database_url: str) -> None:
    """Text to video in the page: the fake KIE's clip (a real H.264 MP4) comes back as a video
    message whose player knows its length and plays."""
    need_chromium()
    proc, url = await demo(spawn, database_url)

    def work(chat: Chat) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        model, screen = to_confirmation(chat, "text_to_video")
        chat.driver.find_element(By.CSS_SELECTOR, f'.kb-btn[data-callback="{action(screen, "ok")}"]').click()

        def loaded(driver: Any) -> dict[str, Any] | None:
            found: dict[str, Any] | None = driver.execute_script("""
                const clips = document.querySelectorAll('.msg.bot video.video');
                const v = clips[clips.length - 1];
                if (!v || v.readyState < 1 || !(v.duration > 0)) return null;
                return {duration: v.duration, width: v.videoWidth, height: v.videoHeight};""")
            return found
        try:
            clip = chat.wait(RESULT_SECONDS).until(loaded)
        except Exception as exc:
            raise AssertionError(f"no playable video on the page within {RESULT_SECONDS} s: {chat.screen()}") from exc
        chat.driver.execute_script("""
            const clips = document.querySelectorAll('.msg.bot video.video');
            const v = clips[clips.length - 1];
            v.muted = true;
            v.play();""")
        try:
            chat.wait(SCREEN_SECONDS).until(lambda d: d.execute_script(
                "const c = document.querySelectorAll('.msg.bot video.video');"
                "return c[c.length - 1].currentTime > 0.5"))
        except Exception as exc:
            raise AssertionError(f"the clip does not play: {clip}") from exc
        return {"model": model.id, **clip}

    seen = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    assert seen["duration"] > 0 and seen["width"] > 0 and seen["height"] > 0, f"a clip that plays: {seen}"
    delivered = [line for line in proc.log_lines() if line.get("event") == "job_delivered"]
    assert any(line.get("model") == seen["model"] for line in delivered), "the page's job was delivered"


STATUS_MARKS = ("⏳ #", "🕐 #", "🎨 #", "✅ #", "❌ #")  # a generation's status message, by what it says
FIVE = 5


def bot_texts(chat: Chat) -> list[tuple[int, str]]:
    """Every bot message on the page: its id and its text, oldest first."""
    found: list[list[Any]] = chat.driver.execute_script("""
        return [...document.querySelectorAll('.msg.bot')].map(m =>
            [Number(m.dataset.messageId), (m.querySelector('.text') || {}).textContent || '']);""")
    return [(int(i), str(text)) for i, text in found]


def type_in(chat: Chat, text: str) -> None:
    """A message typed into the page's field and sent (set at once: a 5,000-character prompt
    typed key by key would take minutes)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = chat.driver.find_element(By.ID, "text")
    chat.driver.execute_script("arguments[0].value = arguments[1];", box, text)
    box.send_keys(Keys.END, " ", Keys.BACKSPACE, Keys.ENTER)


def message_count(chat: Chat) -> int:
    return int(chat.driver.execute_script("return document.querySelectorAll('.msg').length"))


async def test_the_chat_as_people_use_it_a_typed_prompt_a_captioned_photo_a_split_prompt_pages_and_five_jobs(
        tmp_path: Path, spawn: Any, database_url: str) -> None:
    """Issue 19 in the page: a prompt typed with no flow open reaches its confirmation; a photo
    with a caption is edited with that caption; 5,000 characters the page sends in two messages
    (as a Telegram client cuts them) are one prompt; page turns edit the list's one message; and
    the status message of each of five jobs running at once ends as done."""
    need_chromium()
    proc: TrtProcess = spawn({"DATABASE_URL": database_url, "DEMO_TELEGRAM_PORT": str(free_port()),
                              "DEMO_KIE_PORT": str(free_port()), "DEMO_KIE_SECONDS": "6",
                              "MAX_ACTIVE_JOBS_PER_USER": str(FIVE)}, command="demo")
    await proc.wait_healthy()

    async def ready() -> dict[str, Any] | None:
        return next((line for line in proc.log_lines() if line.get("event") == "demo_ready"), None)
    url = str((await eventually(ready, 60, "the demo_ready line", interval=0.2))["web_chat"])
    picture = tmp_path / "street.png"
    picture.write_bytes(png(96, 64))
    caption = "make it winter, with snow"

    def work(chat: Chat) -> dict[str, Any]:
        from selenium.webdriver.common.by import By

        chat.wait(SCREEN_SECONDS).until(lambda d: d.find_element(By.ID, "start").is_displayed())
        chat.say("/start", expect=t("welcome", name="Guest").splitlines()[0])
        # a prompt with no flow open: its confirmation, at once
        screen = chat.say(PROMPT, expect=t("confirm_header"))
        assert f"“{PROMPT}”" in screen["text"] and action(screen, "ok"), f"the prompt's confirmation: {screen}"

        # a photo with a caption: what to do with it, then Edit -> the caption is the instruction
        chat.driver.execute_script("document.getElementById('text').value = arguments[0];", caption)
        offer = chat.send_photo(picture, expect=t("offer_image"))
        edit = next(d for d in offer["data"] if d.startswith("in:a:") and d.endswith(":image_edit"))
        screen = chat.press(edit, expect=t("confirm_header"))
        assert f"“{caption}”" in screen["text"], f"the caption is the instruction: {screen}"
        chat.driver.find_element(By.CSS_SELECTOR, f'.kb-btn[data-callback="{action(screen, "ok")}"]').click()
        edited = "return [...document.querySelectorAll('.msg.bot')].some(m => m.querySelector('img.photo') " \
                 "&& (m.querySelector('.text') || {}).textContent.includes(arguments[0]))"
        chat.wait(RESULT_SECONDS).until(lambda d: d.execute_script(edited, f"“{caption}”"))

        # 5,000 characters: two messages on the wire, one prompt
        long = " ".join(f"a wide valley with a river, number {i}," for i in range(300))[:5_000]
        type_in(chat, long)
        chat.wait(SCREEN_SECONDS).until(lambda d: any(t("part_joined", count=5_000) in text
                                                      for _, text in bot_texts(chat)))
        screen = chat.next_screen(None, t("confirm_header"), "the long prompt's confirmation")
        assert long[:100] in screen["text"], f"the prompt from its first words: {screen}"

        # page turns edit the list's one message
        chat.say("/start", expect=t("welcome", name="Guest").splitlines()[0])
        page = chat.press(keyboards.family_data("text_to_video"), expect=None)
        before = message_count(chat)
        turn = next(d for d in page["data"] if d.startswith(keyboards.FAMILY + "text_to_video:1"))
        turned = chat.press(turn, expect=None)
        assert turned["id"] == page["id"] and turned["rev"] > page["rev"], "the same message, edited"
        assert message_count(chat) == before, "a page turn adds no message"

        # five jobs at once, each status message ends as done
        chat.say("/start", expect=t("welcome", name="Guest").splitlines()[0])
        statuses_before = len([i for i, text in bot_texts(chat) if text.startswith(STATUS_MARKS)])
        for n in range(FIVE):
            screen = chat.say(f"a lighthouse number {n}", expect=t("confirm_header"))
            chat.driver.find_element(By.CSS_SELECTOR, f'.kb-btn[data-callback="{action(screen, "ok")}"]').click()
            chat.wait(SCREEN_SECONDS).until(lambda d, n=n: len(
                [i for i, text in bot_texts(chat) if text.startswith(STATUS_MARKS)]) == statuses_before + n + 1)

        def all_done(_: Any) -> list[str] | None:
            statuses = [text for _, text in bot_texts(chat) if text.startswith(STATUS_MARKS)][statuses_before:]
            return statuses if all(text.startswith("✅ #") for text in statuses) else None
        try:
            done: list[str] = chat.wait(RESULT_SECONDS).until(all_done)
        except Exception as exc:
            raise AssertionError(f"statuses not all done: {[x for _, x in bot_texts(chat)][-12:]}") from exc
        fits_the_phone(chat)
        return {"done": done}

    seen = await asyncio.to_thread(browse, tmp_path, url + "?lang=en", work)
    assert len(seen["done"]) == FIVE and all("Done in" in text for text in seen["done"]), seen
    running = [line for line in proc.log_lines() if line.get("event") == "job_delivered"]
    assert len(running) >= FIVE + 1, "the edit and the five jobs were delivered"
