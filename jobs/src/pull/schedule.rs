//! Command schedules: cron with optional seconds, read in an IANA time zone.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: Tz,
    /// As the user wrote it (normalised to 6+ fields).
    pub expression: String,
}

impl Schedule {
    /// Accepts standard 5-field cron (minute precision) or 6/7 fields with seconds
    /// first; the error says what is wrong.
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let zone = Tz::from_str(timezone.trim()).map_err(|_| {
            ScheduleError::Timezone(format!(
                "{timezone:?} is not an IANA time zone such as Europe/Paris or UTC"
            ))
        })?;
        let trimmed = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let trimmed = match alias(&trimmed) {
            Some(expanded) => expanded.to_string(),
            None => trimmed,
        };
        let fields = trimmed.split(' ').filter(|f| !f.is_empty()).count();
        let normalised = match fields {
            5 => format!("0 {trimmed}"),
            6 | 7 => trimmed,
            0 => return Err(ScheduleError::Cron("is empty".into())),
            n => {
                return Err(ScheduleError::Cron(format!(
                    "has {n} fields; expected 5 (minute hour day month weekday) or 6 with seconds first"
                )));
            }
        };
        let mut fields: Vec<String> = normalised.split(' ').map(str::to_string).collect();
        fields[5] = super::weekdays::translate(&fields[5]).map_err(ScheduleError::Cron)?;
        let cron = cron::Schedule::from_str(&fields.join(" "))
            .map_err(|e| ScheduleError::Cron(e.to_string()))?;
        if cron.upcoming(Utc).next().is_none() {
            return Err(ScheduleError::Cron("never fires".into()));
        }
        Ok(Self {
            cron,
            zone,
            expression: normalised,
        })
    }

    /// The first fire time strictly after `after`, as naive UTC.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<NaiveDateTime> {
        let local = after.with_timezone(&self.zone);
        self.cron
            .after(&local)
            .next()
            .map(|t| t.with_timezone(&Utc).naive_utc())
    }

    /// The shortest gap between two of the next runs (a sample of a day's worth
    /// or 64 runs, whichever comes first): how often it really fires.
    pub fn shortest_interval(&self, after: DateTime<Utc>) -> Option<chrono::Duration> {
        let runs: Vec<_> = self
            .cron
            .after(&after.with_timezone(&self.zone))
            .take(64)
            .collect();
        runs.windows(2).map(|pair| pair[1] - pair[0]).min()
    }

    /// The next `count` fire times after `after` (for the form's preview).
    pub fn preview(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Tz>> {
        let local = after.with_timezone(&self.zone);
        self.cron.after(&local).take(count).collect()
    }
}

/// A schedule stored before Sluice read weekdays as standard cron, rewritten so
/// that it fires on the days its owner saw in the preview then; `None` when
/// nothing changes (no numbered weekdays).
pub fn legacy_to_standard(expression: &str) -> Option<String> {
    let mut fields: Vec<&str> = expression.split_whitespace().collect();
    let weekday = match fields.len() {
        5 => 4,
        6 | 7 => 5,
        _ => return None,
    };
    let converted = super::weekdays::legacy_to_standard(fields[weekday])?;
    fields[weekday] = &converted;
    Some(fields.join(" "))
}

/// The standard shorthands, as the 5-field expressions they stand for.
fn alias(expression: &str) -> Option<&'static str> {
    Some(match expression.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("schedule {0}")]
    Cron(String),
    #[error("timezone: {0}")]
    Timezone(String),
}

impl ScheduleError {
    pub fn field(&self) -> &'static str {
        match self {
            Self::Cron(_) => "schedule",
            Self::Timezone(_) => "timezone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_gets_seconds_and_zones_are_honoured() {
        let schedule = Schedule::parse("30 9 * * *", "Europe/Paris").unwrap();
        assert_eq!(schedule.expression, "0 30 9 * * *");
        // 09:30 in Paris in winter is 08:30 UTC.
        let after = Utc.with_ymd_and_hms(2026, 1, 10, 0, 0, 0).unwrap();
        assert_eq!(
            schedule.next_after(after).unwrap().to_string(),
            "2026-01-10 08:30:00"
        );
        assert_eq!(schedule.preview(after, 5).len(), 5);
    }

    #[test]
    fn seconds_are_optional_and_errors_name_the_field() {
        let every_ten = Schedule::parse("*/10 * * * * *", "UTC").unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
        assert_eq!(
            every_ten.next_after(after).unwrap().to_string(),
            "2026-01-01 00:00:10"
        );
        assert_eq!(
            Schedule::parse("* * *", "UTC").unwrap_err().field(),
            "schedule"
        );
        assert_eq!(
            Schedule::parse("61 * * * *", "UTC").unwrap_err().field(),
            "schedule"
        );
        assert_eq!(
            Schedule::parse("* * * * *", "Mars/Olympus")
                .unwrap_err()
                .field(),
            "timezone"
        );
    }
}

#[cfg(test)]
mod weekday_tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    #[test]
    fn weekdays_are_numbered_as_in_standard_cron() {
        // 2026-12-06 is a Sunday.
        let sunday = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let days = |expression: &str| -> Vec<Weekday> {
            Schedule::parse(expression, "UTC")
                .unwrap()
                .preview(sunday, 7)
                .iter()
                .map(|t| t.weekday())
                .collect()
        };
        use Weekday::*;
        assert_eq!(days("0 9 * * 1-5"), [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
        assert_eq!(days("0 9 * * 0"), [Sun, Sun, Sun, Sun, Sun, Sun, Sun]);
        assert_eq!(days("0 9 * * 7")[0], Sun);
        assert_eq!(days("0 0 9 * * SAT,SUN")[..2], [Sat, Sun]);
        let parsed = Schedule::parse("0 9 * * 1-5", "UTC").unwrap();
        assert_eq!(parsed.expression, "0 0 9 * * 1-5", "stored as written");
        assert_eq!(days("@weekly")[0], Sun);
        let hourly = Schedule::parse("@hourly", "UTC").unwrap();
        assert_eq!(hourly.expression, "0 0 * * * *");
        assert_eq!(
            hourly.shortest_interval(sunday).unwrap().num_seconds(),
            3600
        );
        assert_eq!(
            legacy_to_standard("0 0 9 * * 1-5").as_deref(),
            Some("0 0 9 * * SUN,MON,TUE,WED,THU")
        );
        assert_eq!(legacy_to_standard("0 0 9 * * MON-FRI"), None);
        assert_eq!(legacy_to_standard("*/5 * * * * *"), None);
        let refused = Schedule::parse("0 9 * * 9", "UTC").unwrap_err();
        assert!(refused.to_string().contains("0-7"), "{refused}");
    }
}

#[cfg(test)]
mod interval_tests {
    use super::*;

    #[test]
    fn the_shortest_interval_is_how_often_it_fires() {
        let now = Utc::now();
        let gap = |expression: &str| {
            Schedule::parse(expression, "UTC")
                .unwrap()
                .shortest_interval(now)
                .unwrap()
                .num_seconds()
        };
        assert_eq!(gap("* * * * * *"), 1);
        assert_eq!(gap("*/30 * * * * *"), 30);
        assert_eq!(gap("*/5 * * * *"), 300);
        // Irregular: two runs a second apart each minute.
        assert_eq!(gap("0,1 * * * * *"), 1);
    }
}
