//! Measuring audio that is billed by its length (pure logic): the audio a
//! transcription request sends, the speech a reply carries, the cues of a
//! transcript in SRT or VTT. Exact where the format says it (WAV and PCM,
//! a constant-rate MP3), otherwise estimated from the size at a low bit
//! rate, so that an estimate errs towards charging.

/// An audio file a request sends (a multipart `file` part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clip {
    pub bytes: u64,
    /// Its length, where its header says it (WAV).
    pub exact_ms: Option<i64>,
}

/// The lowest bit rate assumed for compressed audio whose length is not
/// read from it: a file of this many bits a second lasts at least as long
/// as its size says at this rate.
const HIGHEST_BIT_RATE: u64 = 320_000;
/// What speech of an unread format is assumed to run at (Opus, AAC): low,
/// so that its length is not under-counted.
const SPEECH_BIT_RATE: u64 = 32_000;

impl Clip {
    /// `head`: the file's first bytes (its header, at least 44).
    pub fn of(head: &[u8], bytes: u64) -> Clip {
        Clip {
            bytes,
            exact_ms: wav_ms(head, bytes),
        }
    }

    /// Its length: exact, or the least a compressed file of its size
    /// lasts.
    pub fn ms(&self) -> i64 {
        self.exact_ms
            .unwrap_or_else(|| ms_at(self.bytes, HIGHEST_BIT_RATE))
    }
}

fn ms_at(bytes: u64, bits_per_second: u64) -> i64 {
    let ms = u128::from(bytes) * 8 * 1000 / u128::from(bits_per_second.max(1));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A WAV file's length, from its `fmt ` chunk's byte rate and its size.
fn wav_ms(head: &[u8], bytes: u64) -> Option<i64> {
    if head.len() < 36 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let at = memchr::memmem::find(&head[12..], b"fmt ")? + 12;
    let rate = head.get(at + 16..at + 20)?;
    let byte_rate = u32::from_le_bytes(rate.try_into().ok()?);
    (byte_rate > 0).then(|| ms_at(bytes.saturating_sub(44), u64::from(byte_rate) * 8))
}

/// The length of speech a reply carries, from its format (the request's
/// `response_format`, default mp3), its first bytes and its size; and
/// whether that is exact.
pub fn speech_ms(format: &str, head: &[u8], bytes: u64) -> (i64, bool) {
    match format {
        // OpenAI's PCM: 24 kHz, 16-bit, mono.
        "pcm" => (ms_at(bytes, 24_000 * 16), true),
        "wav" => match wav_ms(head, bytes) {
            Some(ms) => (ms, true),
            None => (ms_at(bytes, 24_000 * 16), false),
        },
        "mp3" => match mp3_bit_rate(head) {
            Some(rate) => (ms_at(bytes, rate), false),
            None => (ms_at(bytes, SPEECH_BIT_RATE), false),
        },
        _ => (ms_at(bytes, SPEECH_BIT_RATE), false),
    }
}

/// The bit rate of the first MPEG audio frame (after an ID3 tag, if any).
fn mp3_bit_rate(head: &[u8]) -> Option<u64> {
    let mut at = 0;
    if head.starts_with(b"ID3") && head.len() >= 10 {
        let size = head[6..10]
            .iter()
            .fold(0usize, |n, b| (n << 7) | usize::from(b & 0x7f));
        at = 10 + size;
    }
    let frame = head.get(at..at + 4)?;
    if frame[0] != 0xff || frame[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (frame[1] >> 3) & 0b11; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (frame[1] >> 1) & 0b11; // 1: layer III
    let index = usize::from(frame[2] >> 4);
    if layer != 1 || index == 0 || index == 15 {
        return None;
    }
    const MPEG1_L3: [u64; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const MPEG2_L3: [u64; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let kbps = if version == 3 { MPEG1_L3 } else { MPEG2_L3 }[index];
    Some(kbps * 1000)
}

/// The end of the last cue of an SRT or VTT transcript
/// (`00:01:02,500 --> 00:01:04,000`): how long the audio ran at least.
pub fn cues_ms(text: &str) -> Option<i64> {
    let arrow = text.rfind("-->")?;
    let after = text[arrow + 3..].trim_start();
    let stamp: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, ':' | ',' | '.'))
        .collect();
    let (clock, millis) = stamp.split_once([',', '.']).unwrap_or((&stamp, "0"));
    let mut ms: i64 = millis.parse().ok()?;
    for (i, part) in clock.rsplit(':').enumerate() {
        let n: i64 = part.parse().ok()?;
        ms += n * 1000 * [1, 60, 3600].get(i)?;
    }
    Some(ms)
}

/// How long speech of `words` words runs at least (a fast speaker: three
/// words a second), for a plain-text transcript of audio whose length the
/// gateway could not read.
pub fn words_ms(text: &str) -> i64 {
    let words = text.split_whitespace().count() as i64;
    words * 1000 / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(seconds: u32) -> Vec<u8> {
        let rate = 16_000u32 * 2; // 16 kHz, 16-bit mono
        let mut v = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0".to_vec();
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(b"\x02\0\x10\0data\0\0\0\0");
        v.resize(44 + (rate * seconds) as usize, 0);
        v
    }

    #[test]
    fn wav_is_exact_and_other_audio_is_at_least_its_size_at_320_kbps() {
        let file = wav(3);
        let clip = Clip::of(&file[..64], file.len() as u64);
        assert_eq!((clip.exact_ms, clip.ms()), (Some(3000), 3000));
        // 40,000 bytes of MP3 last at least 1 s (at 320 kbps).
        assert_eq!(Clip::of(b"ID3xxxx", 40_000).ms(), 1000);
    }

    #[test]
    fn speech_length_by_format() {
        assert_eq!(speech_ms("pcm", &[], 48_000), (1000, true));
        // An MPEG-1 layer III frame at 64 kbps: 8,000 bytes a second.
        assert_eq!(
            speech_ms("mp3", &[0xff, 0xfb, 0x50, 0x00], 16_000),
            (2000, false)
        );
        let file = wav(2);
        assert_eq!(
            speech_ms("wav", &file[..44], file.len() as u64),
            (2000, true)
        );
        assert_eq!(speech_ms("opus", &[], 4_000), (1000, false));
    }

    #[test]
    fn the_last_cue_ends_the_audio() {
        let srt =
            "1\n00:00:00,000 --> 00:00:02,500\nHello\n\n2\n00:01:02,500 --> 00:01:04,250\nthere\n";
        assert_eq!(cues_ms(srt), Some(64_250));
        let vtt = "WEBVTT\n\n00:00.000 --> 00:03.100\nHi\n";
        assert_eq!(cues_ms(vtt), Some(3_100));
        assert_eq!(cues_ms("no cues"), None);
        assert_eq!(words_ms("one two three four five six"), 2000);
    }
}
