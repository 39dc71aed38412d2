//! Cron lines: parsed by croner the way the scheduler reads them, after a
//! check of Herald's own that says what is wrong in an operator's words
//! (which field, which value, what is allowed) rather than croner's.

use croner::parser::{CronParser, Seconds};

/// One field of a cron line: its name, its range, and the names it takes.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const FIVE: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: DAYS,
    },
];

/// Why a cron line was refused.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Herald's own reading, field by field, named for an operator.
    #[error("{0}")]
    Field(String),
    /// What croner refused once the fields looked right.
    #[error(transparent)]
    Parse(#[from] croner::errors::CronError),
}

/// Parses a crontab line the way Herald's scheduler will: five fields,
/// an optional leading seconds field, or an `@daily`-style shortcut.
pub fn parse_cron(line: &str) -> Result<croner::Cron, CronError> {
    if let Some(problem) = problem(line) {
        return Err(CronError::Field(problem));
    }
    Ok(CronParser::builder().seconds(Seconds::Optional).build().parse(line)?)
}

/// What is wrong with `line`, field by field, when something plainly is.
fn problem(line: &str) -> Option<String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    if parts.first().is_some_and(|p| p.starts_with('@')) {
        return None;
    }
    let fields: Vec<&Field> = match parts.len() {
        5 => FIVE.iter().collect(),
        6 => std::iter::once(&SECOND).chain(FIVE.iter()).collect(),
        n => {
            return Some(format!(
                "has {n} field(s); a cron line has 5 (minute hour day-of-month month day-of-week), \
                 or 6 with a seconds field first, or is a shortcut such as @daily"
            ));
        }
    };
    fields
        .iter()
        .zip(&parts)
        .find_map(|(field, text)| field_problem(field, text).map(|p| format!("{}: {p}", field.name)))
}

fn field_problem(field: &Field, text: &str) -> Option<String> {
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step
            && !step.parse::<u32>().is_ok_and(|s| s >= 1)
        {
            return Some(format!("the step in {item:?} is not a whole number from 1"));
        }
        // croner's extensions (L, W, #, ?) are left to croner.
        if range == "*" || range == "?" || range.contains(['L', 'W', '#']) {
            continue;
        }
        let ends: Vec<&str> = match range.split_once('-') {
            Some((from, to)) => vec![from, to],
            None => vec![range],
        };
        for end in ends {
            if let Some(problem) = value_problem(field, end) {
                return Some(problem);
            }
        }
    }
    None
}

fn value_problem(field: &Field, value: &str) -> Option<String> {
    if let Ok(n) = value.parse::<u32>() {
        return (n < field.min || n > field.max).then(|| format!("{n} is out of range {}-{}", field.min, field.max));
    }
    if field.names.iter().any(|n| n.eq_ignore_ascii_case(value)) {
        return None;
    }
    let allowed = match field.names {
        [] => format!("a number {}-{}", field.min, field.max),
        names if field.max == 7 => format!(
            "a day name ({}-{}) or a number 0-7 (0 and 7 are Sunday)",
            names[0],
            names[names.len() - 1]
        ),
        names => format!(
            "a month name ({}-{}) or a number {}-{}",
            names[0],
            names[names.len() - 1],
            field.min,
            field.max
        ),
    };
    Some(format!("{value:?} is not {allowed}"))
}

#[cfg(test)]
mod tests {
    use super::parse_cron;

    #[test]
    fn mistakes_are_told_by_field_in_plain_words() {
        for (line, said) in [
            (
                "0 8 * * SATURDAY",
                "day of week: \"SATURDAY\" is not a day name (SUN-SAT) or a number 0-7 (0 and 7 are Sunday)",
            ),
            ("0 7 * *", "has 4 field(s); a cron line has 5"),
            ("61 7 * * 1", "minute: 61 is out of range 0-59"),
            ("0 24 * * *", "hour: 24 is out of range 0-23"),
            ("0 7 0 * *", "day of month: 0 is out of range 1-31"),
            (
                "0 7 * June *",
                "month: \"June\" is not a month name (JAN-DEC) or a number 1-12",
            ),
            (
                "*/0 7 * * *",
                "minute: the step in \"*/0\" is not a whole number from 1",
            ),
            ("0 7 * * MON-FRIDAY", "day of week: \"FRIDAY\" is not a day name"),
            ("70 0 7 * * *", "second: 70 is out of range 0-59"),
        ] {
            let error = parse_cron(line).expect_err(line);
            assert!(error.to_string().starts_with(said), "{line}: {error}");
        }
    }

    #[test]
    fn what_croner_reads_still_reads() {
        for line in [
            "0 8 * * SAT",
            "0 8 * * sat",
            "30 6 * * 1-5",
            "0 7 * JAN,JUL MON",
            "*/10 * * * * *",
            "@daily",
            "@weekly",
            "0 7 L * *",
            "0 7 * * 5#2",
            "0 7 * * 7",
            "0 0-30/15 * * * *",
        ] {
            assert!(parse_cron(line).is_ok(), "{line}: {:?}", parse_cron(line).err());
        }
    }
}
