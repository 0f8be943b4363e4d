//! PII in recognised speech, and the redacted sentence view (`AutoRedaction`).
//!
//! Recognisers write numbers as digits, digit groups or words ("four five three nine", "4539",
//! "45 39"), so numbers are found on the spoken digits: a run of words that are all digits or
//! digit words (with "double"/"triple" and "oh" for zero) is one number. A run of 13 to 19 digits
//! passing the Luhn check is a card number, 10 or 11 (a leading 1) a phone number, any other run
//! of 7 or more digits a number that may identify someone (an account, a national ID). Words
//! with an `@` are e-mail addresses. Each entity's words are replaced by its type in brackets.

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
}

impl Entity {
    /// The bracketed label the redacted view shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::CreditCard => "[CREDIT_CARD]",
            Self::PhoneNumber => "[PHONE_NUMBER]",
            Self::Number => "[NUMBER]",
            Self::EmailAddress => "[EMAIL_ADDRESS]",
        }
    }
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
    let stripped: String = w.chars().filter(|c| *c != '-').collect();
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

/// The entities in `words`: `(first word, last word, entity)`, in order, not overlapping.
pub fn find(words: &[&str]) -> Vec<(usize, usize, Entity)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if words[i].contains('@') {
            out.push((i, i, Entity::EmailAddress));
            i += 1;
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
        let mut digits = Vec::new();
        let mut repeat = 1;
        let mut j = i;
        while j < words.len() {
            match digits_of(words[j]) {
                Some(Spoken::Digits(d)) => {
                    for _ in 0..repeat {
                        digits.extend_from_slice(&d);
                    }
                    repeat = 1;
                }
                Some(Spoken::Repeat(n)) => repeat = n,
                None => break,
            }
            j += 1;
        }
        // Trailing homophones ("… nine to") are not part of the number.
        let mut end = j;
        while end > i + 1 && weak(words[end - 1]) {
            end -= 1;
        }
        if end < j {
            // Recount without the trailing words.
            digits.clear();
            let mut repeat = 1;
            for w in &words[i..end] {
                match digits_of(w) {
                    Some(Spoken::Digits(d)) => {
                        for _ in 0..repeat {
                            digits.extend_from_slice(&d);
                        }
                        repeat = 1;
                    }
                    Some(Spoken::Repeat(n)) => repeat = n,
                    None => {}
                }
            }
        }
        if let Some(entity) = classify(&digits) {
            out.push((i, end - 1, entity));
        }
        i = end.max(i + 1);
    }
    out
}

/// `sentences` with their PII replaced by its type, in the text and in the words (an entity's
/// words become one word, spanning their times).
pub fn redact(sentences: &[Sentence]) -> Vec<Sentence> {
    sentences
        .iter()
        .map(|s| {
            let tokens: Vec<&str> = s.transcript.split_whitespace().collect();
            let found = find(&tokens);
            let mut text = Vec::with_capacity(tokens.len());
            let mut at = 0;
            for &(first, last, entity) in &found {
                text.extend(tokens[at..first].iter().map(|t| (*t).to_owned()));
                text.push(entity.label().to_owned());
                at = last + 1;
            }
            text.extend(tokens[at..].iter().map(|t| (*t).to_owned()));

            let words: Vec<&str> = s.words.iter().map(|w| w.word.as_str()).collect();
            let mut redacted_words = Vec::with_capacity(words.len());
            let mut at = 0;
            for (first, last, entity) in find(&words) {
                redacted_words.extend(s.words[at..first].iter().cloned());
                redacted_words.push(Word {
                    end_time: s.words[last].end_time.clone(),
                    start_time: s.words[first].start_time.clone(),
                    word: entity.label().to_owned(),
                });
                at = last + 1;
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
