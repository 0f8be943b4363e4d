//! Scoring transcripts against references: word error rate and key-word recall.
//!
//! Both sides are normalised the same way before comparison, because engines write numbers
//! differently ("415-555-0132", "four one five", "12/27", "twelve twenty seven"):
//! lower case; punctuation becomes a word break; number words become digits ("twenty seven" →
//! 27, "oh" between digits → 0); then every digit string is split into single digits. So a card
//! number scores digit by digit whatever grouping the engine chose.

/// Normalised words of `text` (see the module docs).
pub fn normalise(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase();
    let raw: Vec<String> = lowered
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.strip_suffix("'s").unwrap_or(w).to_owned())
        .collect();
    let mut numbered: Vec<String> = Vec::with_capacity(raw.len());
    let mut index = 0;
    while let Some(word) = raw.get(index) {
        index += 1;
        if let Some(tens) = tens_value(word) {
            // "twenty seven" → 27
            if let Some(unit) = raw
                .get(index)
                .and_then(|w| unit_value(w))
                .filter(|&u| (1..=9).contains(&u))
            {
                index += 1;
                numbered.push((tens + unit).to_string());
            } else {
                numbered.push(tens.to_string());
            }
        } else if let Some(unit) = unit_value(word) {
            numbered.push(unit.to_string());
        } else {
            numbered.push(word.clone());
        }
    }
    // "oh" counts as zero between two digits ("five oh one").
    let is_digits = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit());
    let mut out = Vec::with_capacity(numbered.len());
    for (i, word) in numbered.iter().enumerate() {
        let before = i
            .checked_sub(1)
            .and_then(|j| numbered.get(j))
            .is_some_and(|w| is_digits(w));
        let after = numbered.get(i + 1).is_some_and(|w| is_digits(w));
        if (word == "oh" || word == "o") && before && after {
            out.push("0".to_owned());
        } else if is_digits(word) {
            out.extend(word.chars().map(String::from));
        } else {
            out.push(word.clone());
        }
    }
    out
}

fn unit_value(word: &str) -> Option<u32> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS
        .iter()
        .position(|&u| u == word)
        .and_then(|p| u32::try_from(p).ok())
}

fn tens_value(word: &str) -> Option<u32> {
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    TENS.iter()
        .position(|&t| t == word)
        .and_then(|p| u32::try_from(p).ok())
        .map(|p| (p + 2) * 10)
}

/// Word-level edit counts between a reference and a hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WordErrors {
    /// Substitutions + deletions + insertions (the Levenshtein distance).
    pub errors: usize,
    /// Words in the reference.
    pub reference_words: usize,
}

impl WordErrors {
    /// `errors / reference_words` (0 for an empty reference with an empty hypothesis).
    pub fn rate(&self) -> f64 {
        if self.reference_words == 0 {
            return if self.errors == 0 { 0.0 } else { 1.0 };
        }
        self.errors as f64 / self.reference_words as f64
    }

    /// Adds another pair's counts (for corpus-level WER).
    pub fn add(&mut self, other: Self) {
        self.errors += other.errors;
        self.reference_words += other.reference_words;
    }
}

/// Word errors of `hypothesis` against `reference`, both normalised first.
pub fn word_errors(reference: &str, hypothesis: &str) -> WordErrors {
    let reference = normalise(reference);
    let hypothesis = normalise(hypothesis);
    WordErrors {
        errors: levenshtein(&reference, &hypothesis),
        reference_words: reference.len(),
    }
}

fn levenshtein(a: &[String], b: &[String]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, word_a) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, word_b) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(word_a != word_b);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Fraction of `expected` (normalised) found in `hypothesis` (normalised), counting each
/// occurrence: two expected "5"s need two "5"s in the hypothesis.
pub fn recall(expected: &str, hypothesis: &str) -> f64 {
    let expected = normalise(expected);
    if expected.is_empty() {
        return 1.0;
    }
    let mut pool = normalise(hypothesis);
    let mut found = 0usize;
    for word in &expected {
        if let Some(at) = pool.iter().position(|w| w == word) {
            pool.swap_remove(at);
            found += 1;
        }
    }
    found as f64 / expected.len() as f64
}

/// Length of the longest common subsequence of the digits of `expected` and `hypothesis`,
/// divided by the number of expected digits: how much of a digit string (a card number) came
/// through in order, tolerating a dropped or inserted digit.
pub fn digit_recall(expected_digits: &str, hypothesis: &str) -> f64 {
    let expected: Vec<u8> = expected_digits.bytes().filter(u8::is_ascii_digit).collect();
    if expected.is_empty() {
        return 1.0;
    }
    let heard: Vec<u8> = normalise(hypothesis)
        .iter()
        .filter(|w| w.len() == 1 && w.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|w| w.bytes().next())
        .collect();
    let mut row = vec![0usize; heard.len() + 1];
    for &e in &expected {
        let mut diagonal = 0;
        for (j, &h) in heard.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if e == h {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[heard.len()] as f64 / expected.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_digits() {
        assert_eq!(
            normalise("My phone is 415-555-0132."),
            [
                "my", "phone", "is", "4", "1", "5", "5", "5", "5", "0", "1", "3", "2"
            ]
        );
        assert_eq!(normalise("twelve twenty seven"), ["1", "2", "2", "7"]);
        assert_eq!(normalise("12/27"), ["1", "2", "2", "7"]);
        assert_eq!(
            normalise("five oh one, oh well"),
            ["5", "0", "1", "oh", "well"]
        );
        assert_eq!(normalise("Acme's  SUPPORT!"), ["acme", "support"]);
        assert_eq!(normalise("forty"), ["4", "0"]);
    }

    #[test]
    fn wer_counts_edits() {
        let errors = word_errors("the card is 4 1 1", "the card is 411");
        assert_eq!(
            errors,
            WordErrors {
                errors: 0,
                reference_words: 6
            }
        );
        let errors = word_errors("a b c d", "a x c");
        assert_eq!(errors.errors, 2);
        assert!((errors.rate() - 0.5).abs() < 1e-12);
        assert_eq!(word_errors("", "").rate(), 0.0);
        assert_eq!(word_errors("", "noise").rate(), 1.0);
    }

    #[test]
    fn recall_and_digit_recall() {
        assert_eq!(recall("card number", "my card number is"), 1.0);
        assert_eq!(recall("5 5 5", "555"), 1.0);
        assert!((recall("5 5 5", "55") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            digit_recall("4539 1488 0343 6467", "4539-1488-0343-6467"),
            1.0
        );
        assert!(
            (digit_recall("4539148803436467", "4539-148-0343-6467") - 15.0 / 16.0).abs() < 1e-12
        );
        assert_eq!(digit_recall("", "x"), 1.0);
        assert_eq!(digit_recall("12", "no digits"), 0.0);
    }
}
