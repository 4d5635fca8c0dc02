//! The weekday field as users write it in standard cron — 0 or 7 is Sunday, 1 is
//! Monday, names SUN–SAT — turned into the names the `cron` crate reads (it
//! numbers Sunday as 1, so `1-5` would otherwise mean Sunday to Thursday).

const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How the numbers of a weekday field count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbering {
    /// Standard cron: 0 (or 7) is Sunday, 1 Monday, … 6 Saturday.
    Standard,
    /// The `cron` crate's: 1 is Sunday, … 7 Saturday (how Sluice read stored
    /// schedules before it spoke standard cron).
    Legacy,
}

impl Numbering {
    /// The range `*` stands for.
    fn all(self) -> (usize, usize) {
        match self {
            Numbering::Standard => (0, 6),
            Numbering::Legacy => (1, 7),
        }
    }

    /// Index into [`NAMES`] of day number `n`.
    fn index(self, n: usize) -> usize {
        match self {
            Numbering::Standard => n % 7,
            Numbering::Legacy => (n + 6) % 7,
        }
    }
}

/// Translates one weekday field: `*`, `?`, numbers 0–7, names, ranges `a-b`,
/// steps `*/n` and `a-b/n`, and lists of those. The error says what is wrong.
pub(crate) fn translate(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    Ok(names(days(field, Numbering::Standard)?))
}

/// A weekday field stored before Sluice spoke standard cron, rewritten in names so
/// that it keeps the days its owner saw (`1-5` was Sunday to Thursday then);
/// `None` when it has no numbers to reinterpret.
pub(crate) fn legacy_to_standard(field: &str) -> Option<String> {
    // Only numbers changed meaning (a `*/n` step lands on the same days either way).
    let numbered = field.split(',').any(|item| {
        !item.starts_with("*/")
            && !item.starts_with("?/")
            && item.bytes().any(|b| b.is_ascii_digit())
    });
    if !numbered {
        return None;
    }
    days(field, Numbering::Legacy).ok().map(names)
}

fn days(field: &str, numbering: Numbering) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step = match step {
            None => 1,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=7).contains(&n) => n,
                _ => return Err(format!("weekday step {raw:?} must be 1 to 7")),
            },
        };
        let (first, last) = match range {
            "*" | "?" => numbering.all(),
            _ => match range.split_once('-') {
                Some((a, b)) => (day(a, numbering)?, day(b, numbering)?),
                // `5/2` means from that day on, every other day, as in Vixie cron.
                None if step > 1 => (day(range, numbering)?, numbering.all().1),
                None => (day(range, numbering)?, day(range, numbering)?),
            },
        };
        // `7` ends a standard range as Sunday after Saturday: `5-7` is Fri, Sat, Sun.
        let last = if numbering == Numbering::Standard && last < first && range.ends_with('7') {
            7
        } else {
            last
        };
        if last < first {
            return Err(format!(
                "weekday range {range:?} runs backwards; write it as two ranges, e.g. 5-6,0"
            ));
        }
        for n in (first..=last).step_by(step) {
            days[numbering.index(n)] = true;
        }
    }
    Ok(days)
}

/// The days as a list of names, or `*` for all seven.
fn names(days: [bool; 7]) -> String {
    if days.iter().all(|d| *d) {
        return "*".to_string();
    }
    NAMES
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

/// One weekday: a number in `numbering` or a three-letter name.
fn day(raw: &str, numbering: Numbering) -> Result<usize, String> {
    let (low, high) = match numbering {
        Numbering::Standard => (0, 7),
        Numbering::Legacy => (1, 7),
    };
    if let Ok(n) = raw.parse::<usize>() {
        return if (low..=high).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "weekday {n} is out of range: use 0-7 (0 and 7 are Sunday) or SUN-SAT"
            ))
        };
    }
    let index = NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(raw))
        .ok_or_else(|| format!("weekday {raw:?} is not 0-7 or a name SUN-SAT"))?;
    // A name is the same day in either numbering.
    Ok(match numbering {
        Numbering::Standard => index,
        Numbering::Legacy => index + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn standard_numbers_and_names_mean_the_same_days() {
        assert_eq!(translate("1-5").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(translate("mon-fri").unwrap(), "MON,TUE,WED,THU,FRI");
        assert_eq!(translate("0").unwrap(), "SUN");
        assert_eq!(translate("7").unwrap(), "SUN");
        assert_eq!(translate("6,0").unwrap(), "SUN,SAT");
        assert_eq!(translate("5-7").unwrap(), "SUN,FRI,SAT");
        assert_eq!(translate("*/2").unwrap(), "SUN,TUE,THU,SAT");
        assert_eq!(translate("1-5/2").unwrap(), "MON,WED,FRI");
        assert_eq!(translate("0-7").unwrap(), "*");
        assert_eq!(translate("*").unwrap(), "*");
    }

    #[test]
    fn legacy_fields_keep_the_days_they_meant() {
        use super::legacy_to_standard;
        // The cron crate read 1-5 as Sunday to Thursday.
        assert_eq!(
            legacy_to_standard("1-5").as_deref(),
            Some("SUN,MON,TUE,WED,THU")
        );
        assert_eq!(legacy_to_standard("2").as_deref(), Some("MON"));
        assert_eq!(legacy_to_standard("7").as_deref(), Some("SAT"));
        assert_eq!(
            legacy_to_standard("MON-FRI"),
            None,
            "names meant the same days"
        );
        assert_eq!(legacy_to_standard("*"), None);
        assert_eq!(
            legacy_to_standard("*/2"),
            None,
            "1,3,5,7 then: SUN,TUE,THU,SAT, as now"
        );
        assert_eq!(legacy_to_standard("2-3,7").as_deref(), Some("MON,TUE,SAT"));
        assert_eq!(
            legacy_to_standard("*/3,2").as_deref(),
            Some("SUN,MON,WED,SAT")
        );
    }

    #[test]
    fn bad_weekdays_say_what_is_wrong() {
        assert!(translate("8").unwrap_err().contains("0-7"));
        assert!(translate("Funday").unwrap_err().contains("SUN-SAT"));
        assert!(translate("5-1").unwrap_err().contains("backwards"));
        assert!(translate("*/0").unwrap_err().contains("step"));
        assert!(translate("1#2").is_err());
    }
}
