//! The Date header value (RFC 5322 §3.3 date-time), formatted from unix seconds by a
//! hand-written civil-calendar conversion so no date crate is needed.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::address::forbidden_control;
use crate::error::Error;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An RFC 5322 date-time such as `Tue, 14 Nov 2023 22:13:20 +0000`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Date {
    text: String,
}

impl Date {
    /// The date-time of `secs` seconds since 1970-01-01T00:00:00Z, in UTC (`+0000`).
    pub fn from_unix(secs: i64) -> Date {
        let days = secs.div_euclid(86_400);
        let seconds_of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = (days.rem_euclid(7) + 4) % 7;
        let text = format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
            WEEKDAYS[weekday as usize],
            day,
            MONTHS[(month - 1) as usize],
            year,
            seconds_of_day / 3600,
            seconds_of_day / 60 % 60,
            seconds_of_day % 60,
        );
        Date { text }
    }

    /// The current time, in UTC. A clock before 1970 counts as 1970.
    pub fn now() -> Date {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Date::from_unix(secs)
    }

    /// Accepts an RFC 5322 date-time (`[Tue, ]14 Nov 2023 22:13:20 +0000`, seconds
    /// optional, numeric zone), kept verbatim after validation, or unix seconds.
    pub fn parse(date: &str) -> Result<Date, Error> {
        let invalid = |reason| Error::InvalidDate {
            date: date.to_owned(),
            reason,
        };
        if let Some(reason) = forbidden_control(date) {
            return Err(invalid(reason));
        }
        let text = date.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<i64>()
                .map(Date::from_unix)
                .map_err(|_| invalid("the unix time is out of range"));
        }
        check_date_time(text).map_err(invalid)?;
        Ok(Date {
            text: text.to_owned(),
        })
    }

    /// The date-time as it appears in the Date header.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Date {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Date::parse(s)
    }
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01 in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `digits` of the given length range as a number.
fn number(digits: &str, min_len: usize, max_len: usize) -> Option<i64> {
    if digits.len() < min_len
        || digits.len() > max_len
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// Validates an RFC 5322 §3.3 date-time with a numeric zone.
fn check_date_time(text: &str) -> Result<(), &'static str> {
    let (weekday, rest) = match text.split_once(',') {
        Some((weekday, rest)) => {
            let weekday = weekday.trim();
            let index = WEEKDAYS
                .iter()
                .position(|name| name.eq_ignore_ascii_case(weekday))
                .ok_or("the day of the week is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun")?;
            (Some(index as i64), rest)
        }
        None => (None, text),
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = fields[..] else {
        return Err("it does not have the form [day-of-week,] day month year hh:mm[:ss] zone");
    };
    let day = number(day, 1, 2).ok_or("the day is not one or two digits")?;
    let month = MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(month))
        .ok_or("the month is not one of Jan, Feb, ..., Dec")? as i64
        + 1;
    let year = number(year, 4, 9)
        .filter(|&year| year >= 1900)
        .ok_or("the year is not a four-digit year from 1900 on")?;
    let time: Vec<&str> = time.split(':').collect();
    let (hour, minute, second) = match time[..] {
        [hour, minute] => (hour, minute, "00"),
        [hour, minute, second] => (hour, minute, second),
        _ => return Err("the time is not hh:mm or hh:mm:ss"),
    };
    let in_range = |field, max| number(field, 2, 2).is_some_and(|value| value <= max);
    if !(in_range(hour, 23) && in_range(minute, 59) && in_range(second, 60)) {
        return Err("the time is not hh:mm or hh:mm:ss within 00:00:00 and 23:59:60");
    }
    let zone_ok = match zone.as_bytes() {
        [b'+' | b'-', ..] => number(&zone[1..], 4, 4).is_some_and(|hhmm| hhmm % 100 <= 59),
        _ => false,
    };
    if !zone_ok {
        return Err("the zone is not +hhmm or -hhmm");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("the day does not exist in that month");
    }
    let actual_weekday = (days_from_civil(year, month, day).rem_euclid(7) + 4) % 7;
    if weekday.is_some_and(|weekday| weekday != actual_weekday) {
        return Err("the day of the week does not match the date");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_timestamps() {
        let cases: &[(i64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 +0000"),
            (-1, "Wed, 31 Dec 1969 23:59:59 +0000"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"), // 2000 is a leap year (÷400)
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 +0000"),
            (1_078_012_800, "Sun, 29 Feb 2004 00:00:00 +0000"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 +0000"),
            (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 +0000"),
            (1_709_251_200, "Fri, 01 Mar 2024 00:00:00 +0000"),
            (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 +0000"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 +0000"), // 2100 is not (÷100)
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 +0000"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 +0000"),
        ];
        for &(secs, expected) in cases {
            assert_eq!(Date::from_unix(secs).to_string(), expected, "{secs}");
        }
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in (-800_000..800_000).step_by(7) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month));
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn parses_valid_dates_verbatim() {
        let cases: &[(&str, &str)] = &[
            (
                "Tue, 14 Nov 2023 22:13:20 +0000",
                "Tue, 14 Nov 2023 22:13:20 +0000",
            ),
            (
                "  Tue, 14 Nov 2023 22:13:20 +0000 ",
                "Tue, 14 Nov 2023 22:13:20 +0000",
            ),
            ("14 Nov 2023 22:13 -0530", "14 Nov 2023 22:13 -0530"),
            (
                "Thu, 29 Feb 2024 23:59:60 +1400",
                "Thu, 29 Feb 2024 23:59:60 +1400",
            ),
            ("1 Jul 2003 10:52:37 +0200", "1 Jul 2003 10:52:37 +0200"),
            ("1700000000", "Tue, 14 Nov 2023 22:13:20 +0000"),
            ("0", "Thu, 01 Jan 1970 00:00:00 +0000"),
        ];
        for &(input, expected) in cases {
            let date = Date::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(date.as_str(), expected);
        }
    }

    #[test]
    fn rejects_invalid_dates() {
        let cases: &[(&str, &str)] = &[
            ("", "it is empty"),
            (
                "Tue, 14 Nov 2023 22:13:20 +0000\r\nBcc: x@y",
                "it contains a line break",
            ),
            ("99999999999999999999", "the unix time is out of range"),
            (
                "Tue 14 Nov 2023 22:13:20 +0000",
                "it does not have the form [day-of-week,] day month year hh:mm[:ss] zone",
            ),
            (
                "Tue, 14 Nov 2023 22:13:20",
                "it does not have the form [day-of-week,] day month year hh:mm[:ss] zone",
            ),
            (
                "Tux, 14 Nov 2023 22:13:20 +0000",
                "the day of the week is not one of Mon, Tue, Wed, Thu, Fri, Sat, Sun",
            ),
            (
                "Wed, 14 Nov 2023 22:13:20 +0000",
                "the day of the week does not match the date",
            ),
            (
                "123 Nov 2023 22:13:20 +0000",
                "the day is not one or two digits",
            ),
            (
                "14 Foo 2023 22:13:20 +0000",
                "the month is not one of Jan, Feb, ..., Dec",
            ),
            (
                "14 Nov 23 22:13:20 +0000",
                "the year is not a four-digit year from 1900 on",
            ),
            (
                "14 Nov 2023 22-13-20 +0000",
                "the time is not hh:mm or hh:mm:ss",
            ),
            (
                "14 Nov 2023 24:00:00 +0000",
                "the time is not hh:mm or hh:mm:ss within 00:00:00 and 23:59:60",
            ),
            (
                "14 Nov 2023 2:13:20 +0000",
                "the time is not hh:mm or hh:mm:ss within 00:00:00 and 23:59:60",
            ),
            ("14 Nov 2023 22:13:20 GMT", "the zone is not +hhmm or -hhmm"),
            (
                "14 Nov 2023 22:13:20 +0060",
                "the zone is not +hhmm or -hhmm",
            ),
            (
                "29 Feb 2023 22:13:20 +0000",
                "the day does not exist in that month",
            ),
            (
                "29 Feb 1900 22:13:20 +0000",
                "the day does not exist in that month",
            ),
            (
                "31 Apr 2023 22:13:20 +0000",
                "the day does not exist in that month",
            ),
            (
                "0 Apr 2023 22:13:20 +0000",
                "the day does not exist in that month",
            ),
        ];
        for &(input, expected) in cases {
            match Date::parse(input) {
                Err(Error::InvalidDate { date, reason }) => {
                    assert_eq!(date, input);
                    assert_eq!(reason, expected, "{input:?}");
                }
                other => panic!("{input:?}: expected InvalidDate, got {other:?}"),
            }
        }
    }
}
