//! PII in recognised speech, and the redacted sentence view (`AutoRedaction`).
//!
//! Recognisers write numbers as digits, digit groups or words ("four five three nine", "4539",
//! "45 39"), so numbers are found on the spoken digits: a run of words that are all digits or
//! digit words (with "double"/"triple" and "oh" for zero) is one number. A run of 13 to 19 digits
//! passing the Luhn check is a card number, 10 or 11 (a leading 1) a phone number, any other run
//! of 7 or more digits a number that may identify someone (an account, a national ID). Words
//! with an `@` are e-mail addresses. Each entity's words are replaced by its type in brackets.
//!
//! Recognisers end a sentence wherever the speaker pauses, which can be inside a number read in
//! groups ("… is 4539, 1488." / "0343, 6467, and …"). [`find_in_sentences`] therefore joins a
//! number that ends one sentence with the number that starts the channel's next sentence when
//! the pieces alone are not a card or phone number and together they are (or when the pieces
//! are each too short to report and together have 7 or more digits); each sentence then
//! reports its own piece, with the whole number as the value.
//!
//! An expiry date is a month and a year said right after a cue ("expires", "expiry",
//! "expiration", "exp", "valid until"/"thru", "good through", with a few filler words such as
//! "date is" between): `09/27`, `9/2027`, `0927`, `09 27`, `0 9 2 7`, "zero nine twenty seven",
//! "twelve twenty seven", "oh nine slash twenty twenty seven", "December twenty seven". Without
//! a cue a month and year are too often something else (a time, a price) to be redacted.

use crate::sentences::{Sentence, Word};

/// What a stretch of words is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// 13–19 digits passing the Luhn check.
    CreditCard,
    /// 10 digits, or 11 starting with 1.
    PhoneNumber,
    /// Another run of 7 or more digits.
    Number,
    /// A word with an `@`.
    EmailAddress,
    /// A card's month and year of expiry, after a cue word.
    ExpiryDate,
}

impl Entity {
    /// The bracketed label the redacted view shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::CreditCard => "[CREDIT_CARD]",
            Self::PhoneNumber => "[PHONE_NUMBER]",
            Self::Number => "[NUMBER]",
            Self::EmailAddress => "[EMAIL_ADDRESS]",
            Self::ExpiryDate => "[EXPIRY_DATE]",
        }
    }
}

/// The normalised value of an entity [`find`] reported in `words` (its words only): the digits
/// of a number, the address of an e-mail, `MM/YY` of an expiry date.
pub fn value(entity: Entity, words: &[&str]) -> String {
    match entity {
        Entity::EmailAddress => words
            .first()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
            .unwrap_or_default(),
        Entity::ExpiryDate => match parse_expiry(words, 0) {
            Some((_, month, year)) => format!("{month:02}/{:02}", year % 100),
            None => String::new(),
        },
        Entity::CreditCard | Entity::PhoneNumber | Entity::Number => digits(words),
    }
}

/// `word` lower-cased without the punctuation around it.
fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// Whether `words[i]` announces an expiry date.
fn expiry_cue(words: &[&str], i: usize) -> bool {
    match bare(words[i]).as_str() {
        "expires" | "expire" | "expired" | "expiry" | "expiring" | "expiration" | "exp" => true,
        "until" | "thru" | "through" => {
            i > 0 && matches!(bare(words[i - 1]).as_str(), "valid" | "good")
        }
        _ => false,
    }
}

/// Words allowed between a cue and the date ("expiry date is …", "expires at the end of …").
fn filler(word: &str) -> bool {
    matches!(
        bare(word).as_str(),
        "date"
            | "is"
            | "on"
            | "in"
            | "of"
            | "the"
            | "it"
            | "its"
            | "it's"
            | "at"
            | "end"
            | "be"
            | "will"
            | "was"
            | "month"
            | "and"
            | "year"
            | "um"
            | "uh"
            | "er"
    )
}

/// One word of a spoken expiry date.
enum DatePart {
    /// Digits as written or said ("09", "nine", "twelve").
    Digits(String),
    /// "twenty", "thirty", …: a tens digit, completed by a following unit word.
    Tens(u8),
    /// "slash", "/".
    Separator,
    /// A month and a year in one word: `09/27`, `9/2027`.
    Whole(u32, u32),
}

fn date_part(word: &str) -> Option<DatePart> {
    let w = bare(word);
    if let Some((m, y)) = w.split_once('/') {
        let ok = |p: &str, lens: &[usize]| {
            lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
        };
        if ok(m, &[1, 2]) && ok(y, &[2, 4]) {
            return Some(DatePart::Whole(m.parse().ok()?, y.parse().ok()?));
        }
        return None;
    }
    let month = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if let Some(i) = month.iter().position(|m| *m == w) {
        return Some(DatePart::Digits(format!("{:02}", i + 1)));
    }
    let digits = match w.as_str() {
        "slash" | "" => return (w == "slash" || word.trim() == "/").then_some(DatePart::Separator),
        // Homophones of two and four are too common around dates to be read as digits.
        "to" | "too" | "for" | "double" | "triple" => return None,
        "ten" => "10",
        "eleven" => "11",
        "twelve" => "12",
        "thirteen" => "13",
        "fourteen" => "14",
        "fifteen" => "15",
        "sixteen" => "16",
        "seventeen" => "17",
        "eighteen" => "18",
        "nineteen" => "19",
        "twenty" => return Some(DatePart::Tens(2)),
        "thirty" => return Some(DatePart::Tens(3)),
        "forty" => return Some(DatePart::Tens(4)),
        "fifty" => return Some(DatePart::Tens(5)),
        _ => match digits_of(&w)? {
            Spoken::Digits(d) if (1..=6).contains(&d.len()) => {
                return Some(DatePart::Digits(
                    d.iter().map(|x| char::from(b'0' + x)).collect(),
                ));
            }
            _ => return None,
        },
    };
    Some(DatePart::Digits(digits.to_owned()))
}

/// A month and year read from `digits`: `MYY`, `MMYY`, `MYYYY` or `MMYYYY` (years 2000–2099).
fn month_year(digits: &str) -> Option<(u32, u32)> {
    let (m, y) = match digits.len() {
        3 | 5 => digits.split_at(1),
        4 | 6 => digits.split_at(2),
        _ => return None,
    };
    let (month, year): (u32, u32) = (m.parse().ok()?, y.parse().ok()?);
    let year_ok = y.len() == 2 || (2000..=2099).contains(&year);
    ((1..=12).contains(&month) && year_ok).then_some((month, year))
}

/// The expiry date said from `words[start]` on: its last word, month and year. The longest
/// reading that is a valid date wins, so digits said after it ("… twenty seven four one five")
/// are left for the numbers.
fn parse_expiry(words: &[&str], start: usize) -> Option<(usize, u32, u32)> {
    let mut digits = String::new();
    // (digits so far, last word) after each word that added digits.
    let mut prefixes: Vec<(String, usize)> = Vec::new();
    let mut k = start;
    while k < words.len() && digits.len() < 6 {
        let Some(part) = date_part(words[k]) else {
            break;
        };
        match part {
            DatePart::Whole(month, year) if digits.is_empty() => {
                let year_ok = year < 100 || (2000..=2099).contains(&year);
                return ((1..=12).contains(&month) && year_ok).then_some((k, month, year));
            }
            DatePart::Whole(..) => break,
            DatePart::Separator if !digits.is_empty() => {}
            DatePart::Separator => return None,
            DatePart::Digits(d) => {
                if digits.len() + d.len() > 6 {
                    break;
                }
                digits.push_str(&d);
                prefixes.push((digits.clone(), k));
            }
            DatePart::Tens(t) => {
                let unit = words.get(k + 1).and_then(|w| match date_part(w) {
                    Some(DatePart::Digits(u)) if u.len() == 1 && u != "0" => Some(u),
                    _ => None,
                });
                let pair = match &unit {
                    Some(u) => format!("{t}{u}"),
                    None => format!("{t}0"),
                };
                if digits.len() + 2 > 6 {
                    break;
                }
                digits.push_str(&pair);
                if unit.is_some() {
                    k += 1;
                }
                prefixes.push((digits.clone(), k));
            }
        }
        k += 1;
    }
    prefixes
        .iter()
        .rev()
        .find_map(|(d, last)| month_year(d).map(|(m, y)| (*last, m, y)))
}

/// The expiry date announced by the cue `words[cue]`: its first and last word.
fn expiry_after(words: &[&str], cue: usize) -> Option<(usize, usize)> {
    let mut start = cue + 1;
    let mut skipped = 0;
    while start < words.len() && filler(words[start]) && skipped < 4 {
        start += 1;
        skipped += 1;
    }
    let (last, _, _) = parse_expiry(words, start)?;
    Some((start, last))
}

/// The digits a word stands for (`"four"` → `4`, `"4539,"` → `4539`, `"double"` → repeat
/// marker), or `None` when it is not a number word.
fn digits_of(word: &str) -> Option<Spoken> {
    let w: String = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    let digit = match w.as_str() {
        "zero" | "oh" | "o" => Some(0),
        "one" => Some(1),
        "two" | "to" | "too" => Some(2),
        "three" => Some(3),
        "four" | "for" => Some(4),
        "five" => Some(5),
        "six" => Some(6),
        "seven" => Some(7),
        "eight" => Some(8),
        "nine" => Some(9),
        "double" => return Some(Spoken::Repeat(2)),
        "triple" => return Some(Spoken::Repeat(3)),
        _ => None,
    };
    if let Some(d) = digit {
        return Some(Spoken::Digits(vec![d]));
    }
    // Group separators inside a written number: "4539-1488", "4,539", "0343.6467".
    let stripped: String = w
        .chars()
        .filter(|c| !matches!(c, '-' | ',' | '.'))
        .collect();
    (!stripped.is_empty() && stripped.bytes().all(|b| b.is_ascii_digit()))
        .then(|| Spoken::Digits(stripped.bytes().map(|b| b - b'0').collect()))
}

enum Spoken {
    Digits(Vec<u8>),
    Repeat(usize),
}

/// Whether the word could only be a digit homophone inside a run ("to", "for", "oh"): such a
/// word does not start a run on its own.
fn weak(word: &str) -> bool {
    matches!(
        word.trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
            .as_str(),
        "to" | "too" | "for" | "oh" | "o" | "double" | "triple"
    )
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn classify(digits: &[u8]) -> Option<Entity> {
    match digits.len() {
        13..=19 if luhn(digits) => Some(Entity::CreditCard),
        10 => Some(Entity::PhoneNumber),
        11 if digits.first() == Some(&1) => Some(Entity::PhoneNumber),
        n if n >= 7 => Some(Entity::Number),
        _ => None,
    }
}

/// What [`scan`] found at a stretch of words.
enum Hit {
    Email,
    Expiry,
    /// A run of number words, of any length, with the digits it stands for.
    Digits(Vec<u8>),
}

/// The e-mail addresses, expiry dates and runs of number words in `words`:
/// `(first word, last word, hit)`, in order, not overlapping.
fn scan(words: &[&str]) -> Vec<(usize, usize, Hit)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i].contains('@') {
            out.push((i, i, Hit::Email));
            i += 1;
            continue;
        }
        if expiry_cue(words, i)
            && let Some((first, last)) = expiry_after(words, i)
        {
            out.push((first, last, Hit::Expiry));
            i = last + 1;
            continue;
        }
        // A homophone ("for", "to") starts a number only right before a digit word: "my card
        // number is for five three nine …" is a misheard "four".
        let starts = digits_of(words[i]).is_some()
            && (!weak(words[i])
                || words
                    .get(i + 1)
                    .is_some_and(|next| !weak(next) && digits_of(next).is_some()));
        if !starts {
            i += 1;
            continue;
        }
        // The longest run of number words from here.
        let mut j = i;
        while j < words.len() && digits_of(words[j]).is_some() {
            j += 1;
        }
        // Trailing homophones ("… nine to") are not part of the number.
        let mut end = j;
        while end > i + 1 && weak(words[end - 1]) {
            end -= 1;
        }
        out.push((i, end - 1, Hit::Digits(digit_values(&words[i..end]))));
        i = end.max(i + 1);
    }
    out
}

/// The entities in `words`: `(first word, last word, entity)`, in order, not overlapping.
pub fn find(words: &[&str]) -> Vec<(usize, usize, Entity)> {
    scan(words)
        .into_iter()
        .filter_map(|(first, last, hit)| Some((first, last, entity_of(&hit)?)))
        .collect()
}

fn entity_of(hit: &Hit) -> Option<Entity> {
    match hit {
        Hit::Email => Some(Entity::EmailAddress),
        Hit::Expiry => Some(Entity::ExpiryDate),
        Hit::Digits(d) => classify(d),
    }
}

/// One entity in one sentence, from [`find_in_sentences`]. Its value is customer data:
/// `Debug` shows only its length, and it is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Found {
    /// The sentence's first word of it.
    pub first: usize,
    /// The sentence's last word of it.
    pub last: usize,
    /// What it is.
    pub entity: Entity,
    /// Its normalised [`value`]: of the whole entity when it continues in a neighbouring
    /// sentence.
    pub value: String,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("first", &self.first)
            .field("last", &self.last)
            .field("entity", &self.entity)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

impl Drop for Found {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

/// The entities in a transcript's sentences, given as `(channel, words)` in transcript order:
/// per sentence, what [`find`] reports there, except that a number split over consecutive
/// sentences of one channel is reported whole (see the module docs).
pub fn find_in_sentences(sentences: &[(u32, Vec<&str>)]) -> Vec<Vec<Found>> {
    let scans: Vec<Vec<(usize, usize, Hit)>> =
        sentences.iter().map(|(_, words)| scan(words)).collect();
    // (sentence, hit) → the whole number's entity and digits, for the pieces that were joined.
    let mut joined: std::collections::BTreeMap<(usize, usize), (Entity, String)> =
        std::collections::BTreeMap::new();
    let mut channels: Vec<u32> = sentences.iter().map(|(c, _)| *c).collect();
    channels.sort_unstable();
    channels.dedup();
    for channel in channels {
        let order: Vec<usize> = (0..sentences.len())
            .filter(|&k| sentences[k].0 == channel)
            .collect();
        // Chains of number runs that touch across sentence boundaries: a run ending a
        // sentence, then the run starting the channel's next one, and so on.
        let mut chain: Vec<(usize, usize)> = Vec::new();
        for &k in &order {
            let hits = &scans[k];
            if !chain.is_empty() && matches!(hits.first(), Some((0, _, Hit::Digits(_)))) {
                chain.push((k, 0));
            } else {
                join_chain(&chain, &scans, &mut joined);
                chain.clear();
            }
            let len = sentences[k].1.len();
            let ends_in_number =
                matches!(hits.last(), Some((_, last, Hit::Digits(_))) if *last + 1 == len);
            if ends_in_number {
                let last_hit = hits.len() - 1;
                if chain.last() != Some(&(k, last_hit)) {
                    join_chain(&chain, &scans, &mut joined);
                    chain.clear();
                    chain.push((k, last_hit));
                }
            } else {
                join_chain(&chain, &scans, &mut joined);
                chain.clear();
            }
        }
        join_chain(&chain, &scans, &mut joined);
    }
    scans
        .iter()
        .enumerate()
        .map(|(k, hits)| {
            let words = &sentences[k].1;
            hits.iter()
                .enumerate()
                .filter_map(|(h, (first, last, hit))| {
                    let (entity, normalised) = match joined.get(&(k, h)) {
                        Some((entity, whole)) => (*entity, whole.clone()),
                        None => {
                            let entity = entity_of(hit)?;
                            (entity, value(entity, &words[*first..=*last]))
                        }
                    };
                    Some(Found {
                        first: *first,
                        last: *last,
                        entity,
                        value: normalised,
                    })
                })
                .collect()
        })
        .collect()
}

/// Joins stretches of `chain` (number runs touching across sentence boundaries) into whole
/// numbers, left to right, longest first: a stretch is joined when none of its pieces is a
/// card or phone number by itself and together they are one, or when none of its pieces would
/// be reported by itself and together they are a number of 7 or more digits.
fn join_chain(
    chain: &[(usize, usize)],
    scans: &[Vec<(usize, usize, Hit)>],
    joined: &mut std::collections::BTreeMap<(usize, usize), (Entity, String)>,
) {
    let digits_at = |&(k, h): &(usize, usize)| match &scans[k][h].2 {
        Hit::Digits(d) => d.as_slice(),
        _ => &[],
    };
    let whole = |d: &[u8]| matches!(classify(d), Some(Entity::CreditCard | Entity::PhoneNumber));
    let mut a = 0;
    while a + 1 < chain.len() {
        let mut taken = None;
        for b in (a + 1..chain.len()).rev() {
            let pieces = &chain[a..=b];
            if pieces.iter().any(|p| whole(digits_at(p))) {
                continue;
            }
            let all: Vec<u8> = pieces.iter().flat_map(|p| digits_at(p).to_vec()).collect();
            let entity = match classify(&all) {
                Some(e @ (Entity::CreditCard | Entity::PhoneNumber)) => e,
                Some(Entity::Number) if pieces.iter().all(|p| classify(digits_at(p)).is_none()) => {
                    Entity::Number
                }
                _ => continue,
            };
            let value: String = all.iter().map(|x| char::from(b'0' + x)).collect();
            for p in pieces {
                joined.insert(*p, (entity, value.clone()));
            }
            taken = Some(b);
            break;
        }
        a = taken.map_or(a + 1, |b| b + 1);
    }
}

/// The digits `words` stand for ("four double five" → `455`, "4539-1488" → `45391488`): the
/// normalised value of a number entity [`find`] reported.
pub fn digits(words: &[&str]) -> String {
    digit_values(words)
        .iter()
        .map(|x| char::from(b'0' + x))
        .collect()
}

/// The digits of the number words in `words` ("double" repeats the next one; other words are
/// skipped).
fn digit_values(words: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut repeat = 1;
    for w in words {
        match digits_of(w) {
            Some(Spoken::Digits(d)) => {
                for _ in 0..repeat {
                    out.extend_from_slice(&d);
                }
                repeat = 1;
            }
            Some(Spoken::Repeat(n)) => repeat = n,
            None => {}
        }
    }
    out
}

/// `sentences` with their PII replaced by its type, in the text and in the words (an entity's
/// words become one word, spanning their times).
pub fn redact(sentences: &[Sentence]) -> Vec<Sentence> {
    let texts: Vec<(u32, Vec<&str>)> = sentences
        .iter()
        .map(|s| (s.media_channel, s.transcript.split_whitespace().collect()))
        .collect();
    let words: Vec<(u32, Vec<&str>)> = sentences
        .iter()
        .map(|s| {
            (
                s.media_channel,
                s.words.iter().map(|w| w.word.as_str()).collect(),
            )
        })
        .collect();
    let in_text = find_in_sentences(&texts);
    let in_words = find_in_sentences(&words);
    sentences
        .iter()
        .zip(texts.iter().zip(&in_text))
        .zip(&in_words)
        .map(|((s, ((_, tokens), found)), found_in_words)| {
            let mut text = Vec::with_capacity(tokens.len());
            let mut at = 0;
            for f in found {
                text.extend(tokens[at..f.first].iter().map(|t| (*t).to_owned()));
                text.push(f.entity.label().to_owned());
                at = f.last + 1;
            }
            text.extend(tokens[at..].iter().map(|t| (*t).to_owned()));

            let mut redacted_words = Vec::with_capacity(s.words.len());
            let mut at = 0;
            for f in found_in_words {
                redacted_words.extend(s.words[at..f.first].iter().cloned());
                redacted_words.push(Word {
                    end_time: s.words[f.last].end_time.clone(),
                    start_time: s.words[f.first].start_time.clone(),
                    word: f.entity.label().to_owned(),
                });
                at = f.last + 1;
            }
            redacted_words.extend(s.words[at..].iter().cloned());

            let mut out = s.clone();
            out.transcript = text.join(" ");
            out.words = redacted_words;
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(text: &str) -> Vec<(String, Entity)> {
        let words: Vec<&str> = text.split_whitespace().collect();
        find(&words)
            .into_iter()
            .map(|(a, b, e)| (words[a..=b].join(" "), e))
            .collect()
    }

    #[test]
    fn finds_cards_phones_numbers_and_emails_however_they_are_spoken() {
        assert_eq!(
            entities("my card number is four five three nine one four eight eight zero three four three six four six seven thanks"),
            [("four five three nine one four eight eight zero three four three six four six seven".to_owned(), Entity::CreditCard)]
        );
        assert_eq!(
            entities("card 4539 1488 0343 6467."),
            [("4539 1488 0343 6467.".to_owned(), Entity::CreditCard)]
        );
        // Group separators inside written numbers.
        assert_eq!(
            entities("card 4,539 1488.0343 6467-"),
            [("4,539 1488.0343 6467-".to_owned(), Entity::CreditCard)]
        );
        assert_eq!(
            entities("call me on four one five double five five oh one three two to confirm"),
            [(
                "four one five double five five oh one three two".to_owned(),
                Entity::PhoneNumber
            )]
        );
        // A misheard "four" still starts the card number.
        assert_eq!(
            entities("my card numbers for five three nine one four eight eight zero three four three six four six seven")
                [0]
                .1,
            Entity::CreditCard
        );
        assert_eq!(
            entities("account 1234 567 please"),
            [("1234 567".to_owned(), Entity::Number)]
        );
        assert_eq!(
            entities("mail ann@example.com today"),
            [("ann@example.com".to_owned(), Entity::EmailAddress)]
        );
        // Short numbers and ordinary words stay.
        assert!(entities("I want to go for two weeks in twelve twenty seven").is_empty());
        assert!(entities("four five three nine").is_empty());
        // A 16-digit run failing Luhn is still a number that may identify someone.
        assert_eq!(entities("1234 5678 1234 5678")[0].1, Entity::Number);
    }

    /// `(channel, sentence index, entity words, entity, value)` over sentences of a transcript.
    fn across(sentences: &[(u32, &str)]) -> Vec<(u32, usize, String, Entity, String)> {
        let lists: Vec<(u32, Vec<&str>)> = sentences
            .iter()
            .map(|(c, t)| (*c, t.split_whitespace().collect()))
            .collect();
        find_in_sentences(&lists)
            .into_iter()
            .enumerate()
            .flat_map(|(k, found)| {
                let (channel, words) = &lists[k];
                found
                    .into_iter()
                    .map(|f| {
                        (
                            *channel,
                            k,
                            words[f.first..=f.last].join(" "),
                            f.entity,
                            f.value.clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn numbers_split_over_a_channels_sentences_are_found_whole() {
        let card = "4539148803436467".to_owned();
        // The other side speaks in between: its sentence does not break the customer's number.
        assert_eq!(
            across(&[
                (2, "The card number is 4539, 1488."),
                (1, "Okay."),
                (2, "0343, 6467, and it expires twelve twenty seven."),
            ]),
            [
                (
                    2,
                    0,
                    "4539, 1488.".to_owned(),
                    Entity::CreditCard,
                    card.clone()
                ),
                (
                    2,
                    2,
                    "0343, 6467,".to_owned(),
                    Entity::CreditCard,
                    card.clone()
                ),
                (
                    2,
                    2,
                    "twelve twenty seven.".to_owned(),
                    Entity::ExpiryDate,
                    "12/27".to_owned()
                ),
            ]
        );
        // Three pieces, spoken words and written digits mixed.
        let three = across(&[
            (1, "it is four five three nine"),
            (1, "1488 0343"),
            (1, "six four six seven thanks"),
        ]);
        assert_eq!(three.len(), 3, "{three:?}");
        assert!(
            three
                .iter()
                .all(|f| f.3 == Entity::CreditCard && f.4 == card)
        );
        // A phone number broken after its area code.
        assert_eq!(
            across(&[(1, "call us on 415,"), (1, "555 0132 please")])
                .iter()
                .map(|f| (f.3, f.4.as_str()))
                .collect::<Vec<_>>(),
            [
                (Entity::PhoneNumber, "4155550132"),
                (Entity::PhoneNumber, "4155550132")
            ]
        );
        // Pieces too short alone are still redacted together.
        assert_eq!(
            across(&[(1, "account 1234"), (1, "5678 please")])
                .iter()
                .map(|f| (f.3, f.4.as_str()))
                .collect::<Vec<_>>(),
            [(Entity::Number, "12345678"), (Entity::Number, "12345678")]
        );
    }

    #[test]
    fn complete_numbers_and_other_channels_are_not_joined() {
        // A phone number then a card, each whole in its own sentence.
        let found = across(&[
            (1, "call 415 555 0132"),
            (1, "4539 1488 0343 6467 is the card"),
        ]);
        assert_eq!(
            found.iter().map(|f| f.3).collect::<Vec<_>>(),
            [Entity::PhoneNumber, Entity::CreditCard]
        );
        // Halves said on different channels are two numbers.
        let found = across(&[(1, "it is 4539 1488"), (2, "0343 6467")]);
        assert_eq!(
            found.iter().map(|f| f.3).collect::<Vec<_>>(),
            [Entity::Number, Entity::Number]
        );
        // A sentence that does not end in a number ends the run.
        assert!(across(&[(1, "my pin is 1234, ok."), (1, "5678 later")]).is_empty());
        // Within one sentence, find_in_sentences agrees with find.
        let text = "card 4539 1488 0343 6467 and 415-555-0132 or ann@example.com";
        let words: Vec<&str> = text.split_whitespace().collect();
        let found = &find_in_sentences(&[(1, words.clone())])[0];
        assert_eq!(
            found
                .iter()
                .map(|f| (f.first, f.last, f.entity))
                .collect::<Vec<_>>(),
            find(&words)
        );
    }

    /// `(entity words, value)` of the expiry dates in `text`.
    fn expiries(text: &str) -> Vec<(String, String)> {
        let words: Vec<&str> = text.split_whitespace().collect();
        find(&words)
            .into_iter()
            .filter(|(_, _, e)| *e == Entity::ExpiryDate)
            .map(|(a, b, e)| (words[a..=b].join(" "), value(e, &words[a..=b])))
            .collect()
    }

    #[test]
    fn finds_expiry_dates_however_the_recogniser_wrote_them() {
        let one = |text: &str, said: &str, value: &str| {
            assert_eq!(
                expiries(text),
                [(said.to_owned(), value.to_owned())],
                "{text}"
            );
        };
        one("it expires 09/27 thanks", "09/27", "09/27");
        one("expiry date is 9/2027.", "9/2027.", "09/27");
        one("expires 0927", "0927", "09/27");
        one("the expiry is 09 27 and the code", "09 27", "09/27");
        one("expiry 0 9 2 7 okay", "0 9 2 7", "09/27");
        one(
            "expiry zero nine twenty seven",
            "zero nine twenty seven",
            "09/27",
        );
        one(
            "expiration date twelve twenty seven",
            "twelve twenty seven",
            "12/27",
        );
        one(
            "it expires on nine twenty seven",
            "nine twenty seven",
            "09/27",
        );
        one(
            "expires oh nine slash twenty twenty seven",
            "oh nine slash twenty twenty seven",
            "09/27",
        );
        one(
            "valid through December twenty seven",
            "December twenty seven",
            "12/27",
        );
        one("exp 12-27", "12-27", "12/27");
    }

    #[test]
    fn expiry_dates_need_a_cue_and_a_real_month() {
        // No cue: a time, a price, a room.
        assert!(expiries("see you at nine twenty seven").is_empty());
        assert!(expiries("room 0927 please").is_empty());
        assert!(expiries("I want to go for two weeks in twelve twenty seven").is_empty());
        // Not a month, or no year.
        assert!(expiries("expires 13/27").is_empty());
        assert!(expiries("expires in twenty seven days").is_empty());
        // The digits after the date are someone's phone number, not part of it.
        let text = "expires zero nine two seven four one five five five five zero one three two";
        let words: Vec<&str> = text.split_whitespace().collect();
        let found = find(&words);
        assert_eq!(
            found,
            [(1, 4, Entity::ExpiryDate), (5, 14, Entity::PhoneNumber)]
        );
        // A card number after a cue stays a card number.
        assert_eq!(
            entities("expires 4539 1488 0343 6467")[0].1,
            Entity::CreditCard
        );
    }

    #[test]
    fn redaction_of_a_card_and_its_expiry() {
        let s = Sentence {
            confidence: None,
            end_time: None,
            media_channel: 1,
            sentence_index: 0,
            sid: "GX0".to_owned(),
            start_time: None,
            transcript: "card 4539 1488 0343 6467 expires 09 27 thanks".to_owned(),
            words: Vec::new(),
        };
        let r = redact(std::slice::from_ref(&s));
        assert_eq!(
            r[0].transcript,
            "card [CREDIT_CARD] expires [EXPIRY_DATE] thanks"
        );
    }

    #[test]
    fn redaction_replaces_text_and_words() {
        let w = |word: &str, t: f32| Word {
            end_time: Some(format!("{:.3}", t + 0.5)),
            start_time: Some(format!("{t:.3}")),
            word: word.to_owned(),
        };
        let s = Sentence {
            confidence: None,
            end_time: None,
            media_channel: 1,
            sentence_index: 0,
            sid: "GX0".to_owned(),
            start_time: None,
            transcript: "call four one five five five five zero one three two now".to_owned(),
            words: [
                "call", "four", "one", "five", "five", "five", "five", "zero", "one", "three",
                "two", "now",
            ]
            .iter()
            .enumerate()
            .map(|(i, x)| w(x, i as f32))
            .collect(),
        };
        let r = redact(std::slice::from_ref(&s));
        assert_eq!(r[0].transcript, "call [PHONE_NUMBER] now");
        let words: Vec<&str> = r[0].words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(words, ["call", "[PHONE_NUMBER]", "now"]);
        assert_eq!(r[0].words[1].start_time.as_deref(), Some("1.000"));
        assert_eq!(r[0].words[1].end_time.as_deref(), Some("10.500"));
    }
}
