//! The rules file's reading and checks, on small files.

use super::*;

const QUEUE: &str = "[queues.general]\nsla_secs = 300\n\n";

fn refused(text: &str) -> (Option<usize>, String) {
    let e = Rules::parse(text, Path::new("rules.toml")).unwrap_err();
    (e.line(text), e.reason())
}

#[test]
fn a_refused_file_names_the_line_of_the_bad_key() {
    // The key that is wrong, on its own line.
    let text = format!(
        "{QUEUE}[[rules]]\nname = \"a\"\nwhen = \"human_request\"\nqueue = \"nowhere\"\npriority = 1\n"
    );
    let (line, reason) = refused(&text);
    assert_eq!(line, Some(7), "{reason}");
    assert!(reason.contains("rules[0].queue") && reason.contains("nowhere"));
    // A key that is missing: its table's header.
    let text = format!(
        "{QUEUE}[[rules]]\nname = \"a\"\nwhen = \"human_request\"\nqueue = \"general\"\npriority = 1\n\n[[rules]]\nname = \"b\"\nwhen = \"human_request\"\npriority = 2\n"
    );
    assert_eq!(refused(&text).0, Some(10));
    // A queue's value.
    let text = "[queues.general]\nsla_secs = 0\n";
    assert_eq!(refused(text).0, Some(2));
    // Not TOML at all: where the parser stopped.
    let text = format!("{QUEUE}[[rules]]\nname = \"a\nwhen = 1\n");
    assert_eq!(refused(&text).0, Some(5));
}

#[test]
fn bad_business_hours_are_refused_with_their_key_and_line() {
    let text = format!(
        "{QUEUE}[queues.general.hours]\ntimezone = \"Europe/Berlin\"\nmon = \"09:00-17:00\"\n\
         tue = \"17:00-09:00\"\n"
    );
    let (line, reason) = refused(&text);
    assert_eq!(line, Some(7), "{reason}");
    assert!(reason.contains("queues.general.hours.tue"), "{reason}");
    // Written inline in the queue's table: the `hours` line.
    let text = "[queues.general]\nsla_secs = 300\nhours = { timezone = \"Mars/Olympus\" }\n";
    let (line, reason) = refused(text);
    assert_eq!(line, Some(3), "{reason}");
    assert!(reason.contains("queues.general.hours.timezone"), "{reason}");
    // Good hours are kept with the queue.
    let text = format!(
        "{QUEUE}[queues.general.hours]\ntimezone = \"Europe/Berlin\"\nmon = \"09:00-17:00\"\n"
    );
    let rules = Rules::parse(&text, Path::new("rules.toml")).unwrap();
    let hours = rules.queues["general"].hours.as_ref().unwrap();
    assert_eq!(hours.timezone(), "Europe/Berlin");
}
