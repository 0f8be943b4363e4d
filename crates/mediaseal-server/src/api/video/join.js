// The room join page's script (docs/ROOMS.md, "The join page"): joins a group room through
// the signalling WebSocket with the camera and microphone, shows everyone's video, and keeps
// its progress in `window.mediasealState` for people (the status line) and for tests.
'use strict';

(() => {
  // Everything a test (or a curious user in the console) may want to know; updated in place.
  const state = {
    // idle | connecting | joined | connected | failed | left
    phase: 'idle',
    room: null,
    roomSid: null,
    participantSid: null,
    identity: null,
    connectionState: 'new',
    iceConnectionState: 'new',
    // The DTLS transport from getStats(): dtlsState, tlsVersion, dtlsCipher, srtpCipher, dtlsRole.
    transport: null,
    // Other participants: SID -> identity.
    participants: {},
    // Published tracks heard of: track SID -> { participantSid, kind, name }.
    tracks: {},
    // One entry per received stream from getStats() (inbound-rtp).
    remote: [],
    // One entry per sent stream (outbound-rtp).
    local: [],
    // Every error, as { code, message } (code 0: in the page).
    errors: [],
    // The STUN/TURN URLs the peer connection was given (credentials are not kept here).
    iceServers: [],
  };
  window.mediasealState = state;

  const $ = (id) => document.getElementById(id);
  const status = (text) => {
    $('status').textContent = text;
  };

  function fail(message, code = 0) {
    state.errors.push({ code, message });
    status(`Error${code ? ` ${code}` : ''}: ${message}`);
  }

  // Room and token from the fragment (never sent to any server) or the query; the token is
  // then removed from the address bar and history.
  function fromUrl() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    const room = hash.get('room') || query.get('room');
    const token = hash.get('token') || query.get('token');
    if (token) {
      const keep = room ? `?room=${encodeURIComponent(room)}` : '';
      history.replaceState(null, '', location.pathname + keep);
    }
    return { room, token };
  }

  // Waits until ICE gathering is complete (host candidates only: a second at most), so the
  // offer carries its candidates and none have to be trickled.
  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function videoFor(participantSid) {
    const id = `participant-${participantSid}`;
    let box = document.getElementById(id);
    if (!box) {
      box = document.createElement('figure');
      box.id = id;
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      video.width = 320;
      video.height = 240;
      const caption = document.createElement('figcaption');
      box.append(video, caption);
      $('remote').append(box);
    }
    const who = state.participants[participantSid];
    box.querySelector('figcaption').textContent = who ? `${who} (${participantSid})` : participantSid;
    return box.querySelector('video');
  }

  function join(room, token) {
    state.phase = 'connecting';
    state.room = room;
    status(`Connecting to ${room}…`);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/v1/Rooms/${encodeURIComponent(room)}/Connect`;
    const ws = new WebSocket(url);
    let pc = null;
    let media = null;
    let iceServers = [];
    // Received track id -> the participant SID its stream is named after.
    const owners = {};
    // SDP work happens one step at a time, in the order the messages came.
    let chain = Promise.resolve();
    const serially = (step) => {
      chain = chain.then(step).catch((e) => fail(String(e && e.message ? e.message : e)));
    };
    const send = (message) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    };

    async function publish() {
      status('Starting camera and microphone…');
      media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      $('local').srcObject = media;
      // STUN/TURN from `joined` (short-lived TURN credentials for this participant); none when
      // the server has no TURN configured.
      pc = new RTCPeerConnection({ iceServers: iceServers });
      // What the connection was really given: the URLs, never the credentials.
      state.iceServers = pc.getConfiguration().iceServers.flatMap((s) => [].concat(s.urls));
      for (const track of media.getTracks()) {
        pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      }
      pc.addEventListener('connectionstatechange', () => {
        state.connectionState = pc.connectionState;
        if (pc.connectionState === 'connected') {
          state.phase = 'connected';
          status(`In ${state.room} as ${state.identity}`);
        } else if (pc.connectionState === 'failed') {
          state.phase = 'failed';
          fail('the media connection failed (ICE or DTLS); check that the room\'s UDP address is reachable');
        }
      });
      pc.addEventListener('iceconnectionstatechange', () => {
        state.iceConnectionState = pc.iceConnectionState;
      });
      pc.addEventListener('track', (event) => {
        // The room's offers carry a=msid:<participant SID> <track SID>.
        const stream = event.streams[0];
        if (!stream) return;
        owners[event.track.id] = stream.id;
        const video = videoFor(stream.id);
        if (video.srcObject !== stream) video.srcObject = stream;
        video.play().catch(() => status('Press play on a video to hear the others (the browser blocked autoplay)'));
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      send({ type: 'offer', sdp: pc.localDescription.sdp });
      status('Connecting media…');
    }

    async function answerOffer(sdp) {
      // When both sides offered at once the client's offer wins: the server offers again
      // after answering it (docs/ROOMS.md §3).
      if (!pc || pc.signalingState === 'have-local-offer') return;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      send({ type: 'answer', sdp: pc.localDescription.sdp });
    }

    function onMessage(message) {
      switch (message.type) {
        case 'joined':
          state.phase = 'joined';
          state.roomSid = message.room_sid;
          state.participantSid = message.participant.sid;
          state.identity = message.participant.identity;
          for (const p of message.participants) state.participants[p.sid] = p.identity;
          iceServers = Array.isArray(message.ice_servers) ? message.ice_servers : [];
          serially(publish);
          break;
        case 'answer':
          serially(() => pc.setRemoteDescription({ type: 'answer', sdp: message.sdp }));
          break;
        case 'offer':
          serially(() => answerOffer(message.sdp));
          break;
        case 'participant_connected':
          state.participants[message.participant.sid] = message.participant.identity;
          break;
        case 'participant_disconnected': {
          delete state.participants[message.participant.sid];
          const box = document.getElementById(`participant-${message.participant.sid}`);
          if (box) box.remove();
          break;
        }
        case 'track_published':
          state.tracks[message.track.sid] = {
            participantSid: message.participant_sid,
            kind: message.track.kind,
            name: message.track.name,
          };
          break;
        case 'track_unpublished':
          delete state.tracks[message.track_sid];
          break;
        case 'error':
          fail(message.message, message.code);
          break;
        default:
          break;
      }
    }

    ws.addEventListener('open', () => send({ type: 'join', token }));
    ws.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        fail('the server sent a signalling message that is not JSON');
        return;
      }
      onMessage(message);
    });
    ws.addEventListener('close', async () => {
      // Without signalling the room drops this participant: stop the media too, after a last
      // look at the connection (the room may have ended it because DTLS failed).
      if (pc) {
        await refreshStats().catch(() => {});
        state.connectionState = pc.connectionState;
        pc.close();
      }
      const refused = state.errors.some((e) => e.code !== 0);
      state.phase = state.phase === 'failed' || refused ? 'failed' : 'left';
      if (media) media.getTracks().forEach((t) => t.stop());
      $('leave').hidden = true;
      if (!state.errors.length) status('Left the room');
    });
    $('leave').hidden = false;
    $('leave').addEventListener('click', () => {
      send({ type: 'leave' });
      ws.close();
    });

    async function refreshStats() {
      if (!pc || pc.signalingState === 'closed') return;
      const stats = await pc.getStats();
      const remote = [];
      const local = [];
      let transport = null;
      stats.forEach((r) => {
        const codec = r.codecId && stats.get(r.codecId);
        const mimeType = codec ? codec.mimeType : null;
        if (r.type === 'inbound-rtp') {
          remote.push({
            kind: r.kind,
            mid: r.mid || null,
            trackSid: r.trackIdentifier || null,
            participantSid: owners[r.trackIdentifier] || null,
            mimeType,
            packetsReceived: r.packetsReceived || 0,
            framesDecoded: r.framesDecoded || 0,
            totalSamplesReceived: r.totalSamplesReceived || 0,
            concealedSamples: r.concealedSamples || 0,
          });
        } else if (r.type === 'outbound-rtp') {
          local.push({ kind: r.kind, mimeType, packetsSent: r.packetsSent || 0, framesEncoded: r.framesEncoded || 0 });
        } else if (r.type === 'transport') {
          transport = {
            dtlsState: r.dtlsState || null,
            tlsVersion: r.tlsVersion || null,
            dtlsCipher: r.dtlsCipher || null,
            srtpCipher: r.srtpCipher || null,
            dtlsRole: r.dtlsRole || null,
          };
        }
      });
      state.remote = remote;
      state.local = local;
      state.transport = transport;
    }
    setInterval(() => refreshStats().catch(() => {}), 500);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const { room, token } = fromUrl();
    if (room && token) {
      join(room, token);
      return;
    }
    const form = $('join-form');
    if (room) $('room').value = room;
    form.hidden = false;
    status('Paste the room and your Access Token');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      form.hidden = true;
      join($('room').value.trim(), $('token').value.trim());
    });
  });
})();
