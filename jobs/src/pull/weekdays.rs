//! The weekday field as users write it in standard cron — 0 or 7 is Sunday, 1 is
//! Monday, names SUN–SAT — turned into the names the `cron` crate reads (it
//! numbers Sunday as 1, so `1-5` would otherwise mean Sunday to Thursday).

const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Translates one weekday field: `*`, `?`, numbers 0–7, names, ranges `a-b`,
/// steps `*/n` and `a-b/n`, and lists of those. The error says what is wrong.
pub(crate) fn translate(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
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
            "*" | "?" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                // `5/2` means from Friday on, every other day, as in Vixie cron.
                None if step > 1 => (day(range)?, 6),
                None => (day(range)?, day(range)?),
            },
        };
        // `7` ends a range as Sunday after Saturday: `5-7` is Fri, Sat, Sun.
        let last = if last < first && range.ends_with('7') {
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
            days[n % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".to_string());
    }
    Ok(NAMES
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(","))
}

/// One weekday: 0–7 (0 and 7 are Sunday) or a three-letter name.
fn day(raw: &str) -> Result<usize, String> {
    if let Ok(n) = raw.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "weekday {n} is out of range: use 0-7 (0 and 7 are Sunday) or SUN-SAT"
            ))
        };
    }
    NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(raw))
        .ok_or_else(|| format!("weekday {raw:?} is not 0-7 or a name SUN-SAT"))
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
    fn bad_weekdays_say_what_is_wrong() {
        assert!(translate("8").unwrap_err().contains("0-7"));
        assert!(translate("Funday").unwrap_err().contains("SUN-SAT"));
        assert!(translate("5-1").unwrap_err().contains("backwards"));
        assert!(translate("*/0").unwrap_err().contains("step"));
        assert!(translate("1#2").is_err());
    }
}
