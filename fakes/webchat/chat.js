// The demo web chat: plays a Telegram user against the fake Telegram Bot API (fakes/webchat).
// Everything the bot wrote is rendered from Telegram's stored form (plain text and its entities)
// with DOM text nodes only, so no text from the bot or the user ever becomes markup.
'use strict';

(() => {
  const params = new URLSearchParams(location.search);
  const chat = /^[1-9]\d{0,14}$/.test(params.get('chat') || '') ? Number(params.get('chat')) : 1002;
  const stored = safeGet('trt-demo-lang');
  let lang = ['ru', 'en'].includes(params.get('lang')) ? params.get('lang')
    : stored || ((navigator.language || '').toLowerCase().startsWith('ru') ? 'ru' : 'en');

  const $ = (id) => document.getElementById(id);
  const log = $('log');
  const list = $('messages');
  const rendered = new Map(); // message id -> {key, node, rev}
  let cursor = {calls: 0, digest: ''};
  let typingUntil = 0;
  let online = false;
  let botName = 'TRT';
  let lastView = null;

  // The page's own words, in the language the RU/EN switch chose (the bot's words come from the bot).
  const WORDS = {
    en: {
      intro: 'A demo: you are a Telegram user chatting with the real bot; Telegram and KIE are fakes on this machine. '
        + 'Press START or type /start. 📎 sends any file: a picture as a photo, a video, a sound as music or a voice '
        + 'message, anything else as a file.',
      start: 'START', message: 'Message', send: 'Send', attach: 'Send a file', log: 'Chat with the bot',
      lang: 'Your Telegram language', lang_ru: 'The bot speaks Russian to you',
      lang_en: 'The bot speaks English to you',
      attach_any: 'Any file', attach_photo: 'Photo', attach_video: 'Video', attach_audio: 'Music',
      attach_voice: 'Voice message (OGG)', attach_document: 'As a file, uncompressed',
      attach_hint: 'The text in the message field goes with the file as its caption.',
      samples: 'No file at hand? Send a sample:', sample_photo: 'a picture', sample_video: 'a 4 s clip',
      sample_audio: 'a sound',
      connecting: 'connecting…', starting: 'starting…', typing: 'typing…', online: 'bot',
      uploading: 'sending a file…',
      offline: 'offline: is `python run.py demo` still running?', unreachable: 'the demo is not reachable',
      answered: (status) => 'the fake Telegram answered ' + status,
      edited: 'edited', voice: '🎤 Voice message', audio: 'audio', file: 'file', unsupported:
        'this kind of message is not shown in the demo', spoiler: 'spoiler: click to show',
      not_here: (what) => 'not in the demo: ' + what, pay: 'Pay ', paid: 'You paid ',
      edited_above: '✎ A message above was edited: show it',
      answer_to: (label) => '↩ answers your press on “' + label + '”',
      photo: '🖼 Photo', video: '🎬 Video', animation: 'GIF', document: '📄 File',
    },
    ru: {
      intro: 'Демо: вы пользователь Telegram в чате с настоящим ботом; Telegram и KIE здесь имитации на этой машине. '
        + 'Нажмите «ЗАПУСТИТЬ» или введите /start. 📎 отправляет любой файл: картинку как фото, видео, звук как музыку '
        + 'или голосовое, остальное как файл.',
      start: 'ЗАПУСТИТЬ', message: 'Сообщение', send: 'Отправить', attach: 'Отправить файл', log: 'Чат с ботом',
      lang: 'Ваш язык в Telegram', lang_ru: 'Бот говорит с вами по-русски', lang_en: 'Бот говорит с вами по-английски',
      attach_any: 'Любой файл', attach_photo: 'Фото', attach_video: 'Видео', attach_audio: 'Музыка',
      attach_voice: 'Голосовое (OGG)', attach_document: 'Файлом, без сжатия',
      attach_hint: 'Текст из поля сообщения уйдёт подписью к файлу.',
      samples: 'Нет файла под рукой? Отправьте пример:', sample_photo: 'картинка', sample_video: 'ролик на 4 с',
      sample_audio: 'звук',
      connecting: 'подключение…', starting: 'запускается…', typing: 'печатает…', online: 'бот',
      uploading: 'отправка файла…',
      offline: 'нет связи: `python run.py demo` ещё работает?', unreachable: 'демо недоступно',
      answered: (status) => 'имитация Telegram ответила ' + status,
      edited: 'изменено', voice: '🎤 Голосовое сообщение', audio: 'аудио', file: 'файл', unsupported:
        'такое сообщение демо не показывает', spoiler: 'спойлер: нажмите, чтобы увидеть',
      not_here: (what) => 'в демо нет: ' + what, pay: 'Оплатить ', paid: 'Вы оплатили ',
      edited_above: '✎ Сообщение выше изменено: показать',
      answer_to: (label) => '↩ ответ на нажатие «' + label + '»',
      photo: '🖼 Фото', video: '🎬 Видео', animation: 'GIF', document: '📄 Файл',
    },
  };

  function tr(key, ...values) {
    const word = (WORDS[lang] || WORDS.en)[key];
    return typeof word === 'function' ? word(...values) : word;
  }

  function safeGet(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(url) {
    return typeof url === 'string' && /^(https?:\/\/|tg:\/\/)/i.test(url) ? url : null;
  }

  // ---------------------------------------------------------------- text with Telegram's entities

  const TAGS = {bold: 'b', italic: 'i', underline: 'u', strikethrough: 's', code: 'code', pre: 'pre',
    blockquote: 'blockquote', expandable_blockquote: 'blockquote'};

  function entityNode(entity, text) {
    if (entity.type === 'text_link' || entity.type === 'url') {
      const href = safeUrl(entity.type === 'url' ? text : entity.url);
      if (href) {
        const link = make('a');
        link.href = href;
        link.target = '_blank';
        link.rel = 'noopener noreferrer nofollow';
        return link;
      }
      return make('span', 'link');
    }
    if (entity.type === 'spoiler') {
      const spoiler = make('span', 'spoiler');
      spoiler.title = tr('spoiler');
      spoiler.addEventListener('click', () => spoiler.classList.add('shown'));
      return spoiler;
    }
    return make(TAGS[entity.type] || 'span', 'e-' + String(entity.type).replace(/[^a-z_]/g, ''));
  }

  // Offsets count UTF-16 code units, as JavaScript strings do: slices line up with Telegram's entities.
  function richText(text, entities) {
    const spans = (entities || []).filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    const root = document.createDocumentFragment();
    let index = 0;
    const build = (parent, start, end) => {
      let pos = start;
      while (index < spans.length && spans[index].offset < end) {
        const entity = spans[index];
        const stop = entity.offset + entity.length;
        index += 1;
        if (entity.offset < pos || stop > end) continue; // overlapping, not nested: shown as plain text
        if (entity.offset > pos) parent.append(text.slice(pos, entity.offset));
        const node = entityNode(entity, text.slice(entity.offset, stop));
        build(node, entity.offset, stop);
        parent.append(node);
        pos = stop;
      }
      if (end > pos) parent.append(text.slice(pos, end));
    };
    build(root, 0, text.length);
    return root;
  }

  // ---------------------------------------------------------------- one message

  function money(currency, amount) {
    if (currency === 'XTR') return '⭐ ' + amount;
    return (amount / 100).toFixed(2) + ' ' + currency;
  }

  function size(bytes) {
    if (!Number.isFinite(bytes)) return '';
    return bytes < 1024 * 1024 ? Math.max(1, Math.round(bytes / 1024)) + ' KB' : (bytes / 1048576).toFixed(1) + ' MB';
  }

  function clock(seconds) {
    return Math.floor(seconds / 60) + ':' + String(seconds % 60).padStart(2, '0');
  }

  function mediaNode(media) {
    const kind = media.kind;
    if (kind === 'photo') {
      const img = make('img', 'media photo');
      img.src = media.url;
      img.alt = 'photo';
      if (media.width && media.height) img.style.aspectRatio = media.width + ' / ' + media.height;
      img.addEventListener('load', stickToBottom);
      return img;
    }
    if (kind === 'video' || kind === 'animation') {
      const video = make('video', 'media ' + kind);
      video.src = media.url;
      video.controls = kind === 'video';
      video.preload = 'metadata';
      video.playsInline = true;
      if (kind === 'animation') { video.autoplay = true; video.loop = true; video.muted = true; }
      return video;
    }
    if (kind === 'audio' || kind === 'voice') {
      const box = make('div', 'media audio ' + kind);
      const title = kind === 'voice' ? tr('voice')
        : '🎵 ' + ([media.performer, media.title].filter(Boolean).join(' — ') || media.file_name || tr('audio'));
      const about = make('div', 'audio-about');
      about.append(make('span', 'file-name', title));
      if (Number.isInteger(media.duration)) about.append(make('span', 'duration', clock(media.duration)));
      box.append(about);
      const audio = make('audio');
      audio.src = media.url;
      audio.controls = true;
      audio.preload = 'metadata';
      box.append(audio);
      return box;
    }
    const doc = make('a', 'media document');
    doc.href = media.url;
    doc.download = media.file_name || 'file';
    doc.append(make('span', 'doc-icon', '📄'));
    const about = make('span', 'doc-about');
    about.append(make('span', 'file-name', media.file_name || tr('file')),
      make('span', 'file-size', [size(media.file_size), media.mime_type].filter(Boolean).join(' · ')));
    doc.append(about);
    return doc;
  }

  function keyboard(message) {
    const rows = (message.buttons || []).slice();
    if (message.invoice && !rows.some((row) => row.some((b) => b.pay))) {
      const label = tr('pay');  // the client's own words, in its language
      rows.unshift([{text: label + money(message.invoice.currency, message.invoice.total_amount), pay: true}]);
    }
    if (!rows.length) return null;
    const box = make('div', 'keyboard');
    for (const row of rows) {
      const line = make('div', 'kb-row');
      for (const button of row) {
        let node;
        const href = safeUrl(button.url);
        if (href) {
          node = make('a', 'kb-btn url', button.text);
          node.href = href;
          node.target = '_blank';
          node.rel = 'noopener noreferrer nofollow';
        } else {
          node = make('button', 'kb-btn', button.text);
          node.type = 'button';
          if (typeof button.data === 'string') {
            node.dataset.callback = button.data;
            node.addEventListener('click', () => press(message.id, button.data, node));
          } else if (button.pay) {
            node.classList.add('pay');
            node.addEventListener('click', () => pay(message.id, node));
          } else {
            node.disabled = true;
            node.title = tr('not_here', button.other || 'unknown');
          }
        }
        line.append(node);
      }
      box.append(line);
    }
    return box;
  }

  function time(seconds) {
    if (!Number.isFinite(seconds)) return '';
    const d = new Date(seconds * 1000);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  // A line above a message that names another one, higher up: Telegram's reply quote, or what a
  // bot message answers when the press it answers was on a message above others (it lands below them).
  // Clicking it shows that message.
  function pointer(kind, target) {
    const line = make('button', 'pointer ' + kind);
    line.type = 'button';
    line.dataset.target = String(target.id);
    if (kind === 'answers') {
      line.append(make('span', 'pointer-what', tr('answer_to', target.button || '')));
    }
    const quoted = target.text || tr(target.kind || 'file') || '';
    line.append(make('span', 'pointer-text', quoted));
    line.addEventListener('click', () => reveal(target.id));
    return line;
  }

  function reveal(messageId) {
    const item = rendered.get(messageId);
    if (!item) return;
    item.node.scrollIntoView({block: 'center', behavior: 'smooth'});
    flash(item.node);
  }

  function flash(node) {
    node.classList.remove('flash');
    void node.offsetWidth;  // restart the animation
    node.classList.add('flash');
  }

  function inView(node) {
    const box = node.getBoundingClientRect();
    const area = log.getBoundingClientRect();
    return box.bottom > area.top + 8 && box.top < area.bottom - 8;
  }

  function messageNode(message, rev) {
    const node = make('div', 'msg ' + (message.mine ? 'mine' : 'bot'));
    node.dataset.messageId = String(message.id);
    node.dataset.rev = String(rev);
    if (message.paid) {
      node.className = 'msg service';
      const paid = tr('paid');
      node.append(make('div', 'service', paid + money(message.paid.currency, message.paid.total_amount)));
      return node;
    }
    const bubble = make('div', 'bubble');
    if (message.answers) bubble.append(pointer('answers', message.answers));
    if (message.reply) bubble.append(pointer('reply', message.reply));
    if (message.media) {
      bubble.classList.add('has-media');
      bubble.append(mediaNode(message.media));
    }
    if (message.invoice) {
      const inv = make('div', 'invoice');
      inv.append(make('div', 'inv-title', message.invoice.title), make('div', 'inv-desc', message.invoice.description),
        make('div', 'inv-total', money(message.invoice.currency, message.invoice.total_amount)));
      bubble.append(inv);
    }
    if (message.text) {
      const text = make('div', 'text');
      text.append(richText(message.text, message.entities));
      bubble.append(text);
    } else if (!message.media && !message.invoice) {
      bubble.append(make('div', 'text unsupported', tr('unsupported')));
    }
    bubble.append(make('span', 'meta', (message.edited ? tr('edited') + ' ' : '') + time(message.date)));
    node.append(bubble);
    const kb = keyboard(message);
    if (kb) node.append(kb);
    return node;
  }

  // ---------------------------------------------------------------- the chat

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function stickToBottom() {
    if (log.dataset.stick !== 'no') log.scrollTop = log.scrollHeight;
  }

  function apply(view) {
    lastView = view;
    cursor = {calls: view.calls, digest: view.digest};
    const wasNear = nearBottom();
    let grew = false;
    const edited = [];
    const seen = new Set();
    let previous = null;
    for (const message of view.messages) {
      seen.add(message.id);
      const key = lang + JSON.stringify(message);
      const old = rendered.get(message.id);
      let node = old ? old.node : null;
      if (!old || old.key !== key) {
        const rev = old ? old.rev + 1 : 0;
        node = messageNode(message, rev);
        if (old) old.node.replaceWith(node); else grew = true;
        // the bot changed a message in place (a living screen, a status): shown, not silently swapped
        if (old && old.lang === lang && old.shown !== JSON.stringify(message)) edited.push(node);
        rendered.set(message.id, {key, node, rev, lang, shown: JSON.stringify(message)});
      }
      const wanted = previous ? previous.nextSibling : list.firstChild;
      if (node !== wanted) list.insertBefore(node, wanted);
      previous = node;
    }
    for (const [id, item] of rendered) {
      if (!seen.has(id)) { item.node.remove(); rendered.delete(id); }
    }
    for (const toast of view.toasts || []) showToast(toast.text, toast.alert);
    botName = (view.bot && view.bot.name) || botName;
    $('bot-name').textContent = botName;
    $('start-bar').hidden = view.messages.length > 0 || !view.ready;
    typingUntil = view.typing ? Date.now() + 5000 : 0;
    online = view.ready;
    status();
    log.dataset.stick = wasNear ? 'yes' : 'no';
    if (grew && wasNear) stickToBottom();
    for (const node of edited) flash(node);
    const hidden = edited.filter((node) => !inView(node));
    const jump = $('jump');
    if (hidden.length) {
      const target = Number(hidden[hidden.length - 1].dataset.messageId);
      jump.textContent = tr('edited_above');
      jump.dataset.target = String(target);
      jump.hidden = false;
    } else if (!jump.hidden && jump.dataset.target && rendered.has(Number(jump.dataset.target))
               && inView(rendered.get(Number(jump.dataset.target)).node)) {
      jump.hidden = true;
    }
  }

  function status(text) {
    let shown = text;
    if (!shown) {
      shown = !lastView ? tr('connecting') : !online ? tr('starting')
        : Date.now() < typingUntil ? tr('typing') : tr('online');
    }
    $('bot-status').textContent = shown;
    $('bot-status').classList.toggle('typing', shown === tr('typing'));
  }

  let toastTimer = 0;
  function showToast(text, alert) {
    const toast = $('toast');
    toast.textContent = text;
    toast.classList.toggle('alert', Boolean(alert));
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, alert ? 6000 : 3000);
  }

  async function poll() {
    let wait = 0;
    for (;;) {
      try {
        const query = new URLSearchParams({chat: String(chat), calls: String(cursor.calls), digest: cursor.digest,
          wait: String(wait)});
        const response = await fetch('/demo/api/state?' + query, {cache: 'no-store'});
        if (!response.ok) throw new Error('state ' + response.status);
        apply(await response.json());
        wait = 25;
      } catch (error) {
        online = false;
        status(tr('offline'));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        wait = 0;
      }
    }
  }

  async function act(path, body, busy) {
    if (busy) busy.classList.add('busy');
    try {
      const response = await fetch(path, body instanceof FormData ? {method: 'POST', body}
        : {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) showToast(answer.description || tr('answered', response.status), true);
      return response.ok;
    } catch (error) {
      showToast(tr('unreachable'), true);
      return false;
    } finally {
      if (busy) busy.classList.remove('busy');
    }
  }

  function say(text) {
    log.dataset.stick = 'yes';
    return act('/demo/api/message', {chat, text, lang});
  }

  function press(messageId, data, node) {
    return act('/demo/api/press', {chat, message_id: messageId, data, lang}, node);
  }

  function pay(messageId, node) {
    return act('/demo/api/pay', {chat, message_id: messageId, lang}, node);
  }

  // A film's or a sound's length (seconds) and a film's frame size, as the browser reads them;
  // nothing for other files or when the browser cannot play it within a few seconds.
  function measure(file) {
    const kind = (file.type || '').split('/')[0];
    if (kind !== 'video' && kind !== 'audio') return Promise.resolve({});
    return new Promise((resolve) => {
      const player = document.createElement(kind);
      const url = URL.createObjectURL(file);
      const done = (found) => {
        clearTimeout(timer);
        URL.revokeObjectURL(url);
        player.removeAttribute('src');
        resolve(found);
      };
      const timer = setTimeout(() => done({}), 5000);
      player.preload = 'metadata';
      player.muted = true;
      player.addEventListener('loadedmetadata', () => {
        const found = {};
        if (Number.isFinite(player.duration) && player.duration > 0) found.duration = player.duration.toFixed(3);
        if (kind === 'video' && player.videoWidth) {
          found.width = player.videoWidth;
          found.height = player.videoHeight;
        }
        done(found);
      });
      player.addEventListener('error', () => done({}));
      player.src = url;
    });
  }

  // t.me links the bot made: an invoice link (t.me/$...) is paid here, as Telegram's payment sheet
  // would; a bot's deep link (t.me/<bot>?start=...) opens a new user's chat that starts with it
  // (a friend following an invitation). Anything else opens as a link.
  function followTelegramLink(event) {
    const anchor = event.target.closest && event.target.closest('a[href]');
    if (!anchor) return;
    let url;
    try { url = new URL(anchor.href); } catch (e) { return; }
    if (url.hostname !== 't.me') return;
    if (url.pathname.startsWith('/$') || url.pathname.startsWith('/invoice/')) {
      event.preventDefault();
      act('/demo/api/pay-link', {chat, url: anchor.href, lang}, anchor);
    } else if (url.searchParams.has('start')) {
      event.preventDefault();
      const friend = 2000 + Math.floor(Math.random() * 900000);
      const next = new URLSearchParams({chat: String(friend), lang, start: url.searchParams.get('start')});
      window.open('/demo/?' + next.toString(), '_blank', 'noopener');
    }
  }

  function setLang(value) {
    lang = value;
    try { localStorage.setItem('trt-demo-lang', value); } catch (e) { /* private mode */ }
    document.documentElement.lang = value;
    for (const button of document.querySelectorAll('.lang-btn')) {
      button.setAttribute('aria-pressed', String(button.dataset.lang === value));
    }
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = tr(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-title]')) node.title = tr(node.dataset.i18nTitle);
    for (const node of document.querySelectorAll('[data-i18n-label]')) {
      node.setAttribute('aria-label', tr(node.dataset.i18nLabel));
    }
    for (const node of document.querySelectorAll('[data-i18n-placeholder]')) {
      node.placeholder = tr(node.dataset.i18nPlaceholder);
      node.setAttribute('aria-label', tr(node.dataset.i18nPlaceholder));
    }
    if (!$('jump').hidden) $('jump').textContent = tr('edited_above');
    status();
    if (lastView) apply(lastView);  // the page's words inside messages (edited, Pay, Voice message) too
  }

  document.addEventListener('DOMContentLoaded', () => {
    setLang(lang);
    log.addEventListener('scroll', () => {  // the edited message scrolled into view: the chip has done its job
      const item = rendered.get(Number($('jump').dataset.target));
      if (!$('jump').hidden && item && inView(item.node)) $('jump').hidden = true;
    }, {passive: true});
    $('jump').addEventListener('click', () => {
      $('jump').hidden = true;
      reveal(Number($('jump').dataset.target));
    });
    for (const button of document.querySelectorAll('.lang-btn')) {
      button.addEventListener('click', () => setLang(button.dataset.lang));
    }
    $('composer').addEventListener('submit', async (event) => {
      event.preventDefault();
      const input = $('text');
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      if (!(await say(text))) input.value = text;
    });
    $('start').addEventListener('click', () => say('/start'));
    // A file from disk, the message field's text as its caption, sent as the menu's entry says
    // (the 📎 "any file": as Telegram makes of it). A film's or a sound's length and frame size are
    // measured here, as a Telegram client measures them; the server reads them from the file where it can.
    const menu = $('attach-menu');
    const closeMenu = () => { menu.hidden = true; $('attach').setAttribute('aria-expanded', 'false'); };
    $('attach').addEventListener('click', () => {
      menu.hidden = !menu.hidden;
      $('attach').setAttribute('aria-expanded', String(!menu.hidden));
    });
    document.addEventListener('click', (event) => {
      if (!menu.hidden && !menu.contains(event.target) && !$('attach').contains(event.target)) closeMenu();
    });
    for (const button of menu.querySelectorAll('.sample')) {
      button.addEventListener('click', async () => {
        closeMenu();
        log.dataset.stick = 'yes';
        const body = {chat, lang, kind: button.dataset.kind, caption: $('text').value.trim()};
        if (await act('/demo/api/sample', body, $('attach'))) $('text').value = '';
      });
    }
    for (const input of menu.querySelectorAll('input[type=file]')) {
      input.addEventListener('change', async (event) => {
        const file = event.target.files && event.target.files[0];
        closeMenu();
        if (!file) return;
        const form = new FormData();
        form.append('chat', String(chat));
        form.append('lang', lang);
        form.append('caption', $('text').value.trim());
        form.append('as', input.dataset.as || 'auto');
        for (const [key, value] of Object.entries(await measure(file))) form.append(key, String(value));
        form.append('file', file, file.name);
        log.dataset.stick = 'yes';
        status(tr('uploading'));
        if (await act('/demo/api/file', form, $('attach'))) $('text').value = '';
        status();
        event.target.value = '';
      });
    }
    document.addEventListener('click', followTelegramLink);
    setInterval(() => { if (online) status(); }, 1000);
    poll();
    const start = params.get('start');
    if (start && /^[A-Za-z0-9_-]{1,64}$/.test(start)) {
      history.replaceState(null, '', location.pathname + '?chat=' + chat + '&lang=' + lang);
      say('/start ' + start);
    }
  });
})();
