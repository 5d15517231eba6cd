use std::time::{Duration, SystemTime};

use chrono::{Datelike, TimeZone, Utc, Weekday};

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> SystemTime {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().into()
}

fn monthly() -> Timetable {
    Timetable {
        review: Slots::cron(DEFAULT_REVIEW).unwrap(),
        remind_before: Duration::from_secs(14 * 24 * 3600),
        recheck: Slots::cron_or_every(DEFAULT_RECHECK).unwrap(),
    }
}

#[test]
fn the_default_review_lands_on_the_first_monday_of_each_month() {
    let slots = Slots::cron(DEFAULT_REVIEW).unwrap();
    let mut t = at(2026, 11, 29, 12, 0);
    let mut seen = Vec::new();
    for _ in 0..14 {
        t = slots.next_after(t).unwrap();
        let d: chrono::DateTime<Utc> = t.into();
        assert_eq!(d.weekday(), Weekday::Mon, "{d}");
        assert!(d.day() <= 7, "{d} is not the month's first Monday");
        seen.push((d.year(), d.month()));
    }
    // One slot per month, none skipped.
    assert_eq!(seen.first(), Some(&(2026, 12)));
    assert_eq!(seen.last(), Some(&(2028, 1)));
    assert_eq!(slots.next_after(at(2026, 11, 29, 12, 0)), Some(at(2026, 12, 7, 6, 0)));
    assert_eq!(slots.next_after(at(2026, 12, 7, 6, 0)), Some(at(2027, 1, 4, 6, 0)));
}

#[test]
fn the_reminder_is_due_its_lead_before_the_slot_once() {
    let table = Timetable { recheck: Slots::Off, ..monthly() };
    let state = ScheduleState::starting(at(2026, 11, 20, 0, 0));
    // Before the reminder: nothing, and the wake-up is the reminder's time.
    let due = table.due(&state, at(2026, 11, 22, 0, 0));
    assert_eq!(due.remind, None);
    assert_eq!(due.review, None);
    assert_eq!(due.wake, Some(at(2026, 11, 23, 6, 0)));
    // Two weeks before 7 December 06:00.
    let due = table.due(&state, at(2026, 11, 23, 6, 0));
    assert_eq!(due.remind, Some(at(2026, 12, 7, 6, 0)));
    let reminded = ScheduleState { reminded_for: Some(at(2026, 12, 7, 6, 0)), ..state.clone() };
    assert_eq!(table.due(&reminded, at(2026, 11, 29, 0, 0)).remind, None, "once per slot");
    let off = Timetable { remind_before: Duration::ZERO, ..monthly() };
    assert_eq!(off.due(&state, at(2026, 11, 29, 0, 0)).remind, None);
    // With a daily re-check, the wake-up is whichever comes first.
    assert_eq!(monthly().due(&state, at(2026, 11, 22, 0, 0)).wake, Some(at(2026, 11, 22, 5, 0)));
}

#[test]
fn missed_slots_are_owed_once_after_a_gap() {
    let table = monthly();
    // Handled up to 1 November; down through the slots of November, December and January.
    let state = ScheduleState::starting(at(2026, 11, 1, 0, 0));
    let now = at(2027, 1, 10, 9, 0);
    let due = table.due(&state, now);
    assert_eq!(due.review, Some(Owed { first_slot: at(2026, 11, 2, 6, 0), slots: 3 }));
    // Handling it covers every slot up to now: nothing more is owed.
    let handled = ScheduleState { review_since: now, ..state };
    let due = table.due(&handled, now + Duration::from_secs(60));
    assert_eq!(due.review, None);
    assert_eq!(
        table.due(&handled, at(2027, 2, 1, 6, 0)).review,
        Some(Owed { first_slot: at(2027, 2, 1, 6, 0), slots: 1 })
    );
}

#[test]
fn a_new_schedule_owes_nothing_from_before_it_started() {
    let table = monthly();
    let now = at(2026, 12, 20, 0, 0);
    let due = table.due(&ScheduleState::starting(now), now);
    assert_eq!((due.review, due.recheck), (None, None));
}

#[test]
fn re_checks_follow_a_cron_or_an_interval() {
    let state = ScheduleState::starting(at(2026, 11, 29, 12, 0));
    let daily = monthly();
    assert_eq!(daily.due(&state, at(2026, 11, 30, 4, 59)).recheck, None);
    assert_eq!(daily.due(&state, at(2026, 11, 30, 5, 0)).recheck.map(|o| o.slots), Some(1));
    let hourly = Timetable { recheck: Slots::cron_or_every("1h").unwrap(), ..monthly() };
    assert_eq!(hourly.due(&state, at(2026, 11, 29, 12, 59)).recheck, None);
    assert_eq!(
        hourly.due(&state, at(2026, 11, 29, 13, 0)).recheck.map(|o| o.first_slot),
        Some(at(2026, 11, 29, 13, 0))
    );
}

#[test]
fn seconds_patterns_and_off() {
    let every5 = Slots::cron("*/5 * * * * *").unwrap();
    let t = at(2026, 11, 29, 12, 0);
    assert_eq!(every5.next_after(t), Some(t + Duration::from_secs(5)));
    assert_eq!(every5.count_between(t, t + Duration::from_secs(12)), 2);
    let off = Slots::cron("off").unwrap();
    assert!(off.is_off());
    let table = Timetable { review: off, ..monthly() };
    let due = table.due(&ScheduleState::starting(t), t + Duration::from_secs(90 * 24 * 3600));
    assert_eq!((due.review, due.remind), (None, None));
}

#[test]
fn bad_patterns_say_what_was_expected() {
    let e = Slots::cron("0 6 * * FUNDAY").unwrap_err().to_string();
    assert!(e.contains("FUNDAY") && e.contains("cron pattern"), "{e}");
    assert!(Slots::cron_or_every("0s").is_err());
    assert!(Slots::cron_or_every("every day").is_err());
}
