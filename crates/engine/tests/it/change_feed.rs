use engine::{ChangeFeed, Checkpoint, FeedSpec};
use odoo_rpc::{ClientConfig, OdooClient, field};
use odoo_sim::values::parse_datetime;
use odoo_sim::{OdooSim, RunningSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

async fn start() -> (OdooSim, RunningSim, OdooClient) {
    let sim = OdooSim::new(SimConfig::default());
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let config = sim.config().clone();
    let client = OdooClient::new(ClientConfig::new(
        running.url(),
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap();
    (sim, running, client)
}

fn create_partners(sim: &OdooSim, at: &str, names: impl IntoIterator<Item = String>) -> Vec<i64> {
    sim.clock().freeze_at(parse_datetime(at).unwrap());
    let list: Vec<Map<String, Value>> = names
        .into_iter()
        .map(|name| json!({"name": name}).as_object().cloned().unwrap())
        .collect();
    sim.with_database(|database, env| database.create(env, "res.partner", &list).unwrap())
}

fn spec(page_size: usize) -> FeedSpec {
    let mut spec = FeedSpec::new("res.partner");
    spec.fields = vec!["name".into()];
    spec.page_size = page_size;
    spec
}

/// Only the records a test writes (at 2024 times), not the database's own bootstrap records.
fn test_records_only(page_size: usize) -> FeedSpec {
    let mut spec = spec(page_size);
    spec.domain = field("create_date").lt("2025-01-01 00:00:00");
    spec
}

/// Runs a feed to its end; returns how many times each id was seen, and the pages.
async fn drain(
    client: &OdooClient,
    spec: FeedSpec,
    from: Option<Checkpoint>,
) -> (BTreeMap<i64, usize>, Vec<Checkpoint>) {
    let mut feed = ChangeFeed::new(client, spec, from);
    let mut seen = BTreeMap::new();
    let mut checkpoints = Vec::new();
    while let Some(page) = feed.next_page().await.unwrap() {
        for record in &page.records {
            *seen.entry(record.id().unwrap()).or_insert(0) += 1;
        }
        checkpoints.push(page.checkpoint);
        assert!(checkpoints.len() < 10_000, "the feed does not progress");
    }
    (seen, checkpoints)
}

fn all_partner_ids(sim: &OdooSim) -> BTreeSet<i64> {
    sim.with_database(|database, _| {
        database
            .table("res.partner")
            .unwrap()
            .rows
            .keys()
            .copied()
            .collect()
    })
}

#[tokio::test]
async fn five_thousand_records_stamped_alike_are_all_read_with_pages_of_500() {
    let (sim, _running, client) = start().await;
    let bulk = create_partners(
        &sim,
        "2024-03-01 12:00:00.424242",
        (0..5000).map(|i| format!("bulk {i}")),
    );
    create_partners(
        &sim,
        "2024-03-01 12:00:01.000001",
        (0..3).map(|i| format!("after {i}")),
    );
    let (seen, checkpoints) = drain(&client, test_records_only(500), None).await;
    assert_eq!(seen.len(), 5003);
    assert!(bulk.iter().all(|id| seen.contains_key(id)));
    // One full page of the bulk second is read twice at most: progress is by id.
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    assert!(repeats <= 500, "{repeats} records read again");
    assert!(checkpoints.len() <= 13, "{} pages", checkpoints.len());
    let last = checkpoints.last().unwrap();
    assert!(last.is_second_done());
    assert_eq!(
        odoo_rpc::value::format_datetime(last.second),
        "2024-03-01 12:00:01"
    );
}

#[tokio::test]
async fn microseconds_within_a_second_do_not_follow_ids() {
    let (sim, _running, client) = start().await;
    // Higher ids get earlier microseconds: ordering by write_date is not ordering by id.
    let mut expected = BTreeSet::new();
    for (index, micros) in [900_000, 700_000, 500_000, 300_000, 100_000]
        .iter()
        .enumerate()
    {
        let at = format!("2024-03-01 12:00:05.{micros:06}");
        expected.extend(create_partners(
            &sim,
            &at,
            (0..7).map(|i| format!("m{index}-{i}")),
        ));
    }
    for page_size in [1, 3, 7, 10, 34, 35, 36] {
        let (seen, _) = drain(&client, spec(page_size), None).await;
        assert!(
            expected.iter().all(|id| seen.contains_key(id)),
            "page size {page_size} lost records"
        );
        assert_eq!(
            seen.keys().copied().collect::<BTreeSet<_>>(),
            all_partner_ids(&sim)
        );
    }
}

#[tokio::test]
async fn resuming_from_any_checkpoint_loses_nothing() {
    let (sim, _running, client) = start().await;
    create_partners(
        &sim,
        "2024-03-01 09:00:00.100000",
        (0..23).map(|i| format!("a{i}")),
    );
    create_partners(
        &sim,
        "2024-03-01 09:00:00.200000",
        (0..17).map(|i| format!("b{i}")),
    );
    create_partners(
        &sim,
        "2024-03-01 09:00:03.000000",
        (0..9).map(|i| format!("c{i}")),
    );
    let all = all_partner_ids(&sim);
    let (_, checkpoints) = drain(&client, spec(10), None).await;
    // A crash after any page: what was read before it plus a fresh feed from its checkpoint
    // covers everything.
    let mut feed = ChangeFeed::new(&client, spec(10), None);
    let mut before = BTreeSet::new();
    for checkpoint in checkpoints {
        let page = feed.next_page().await.unwrap().unwrap();
        before.extend(page.records.iter().map(|r| r.id().unwrap()));
        assert_eq!(page.checkpoint, checkpoint);
        let (after, _) = drain(&client, spec(10), Some(checkpoint)).await;
        let union: BTreeSet<i64> = before
            .iter()
            .copied()
            .chain(after.keys().copied())
            .collect();
        assert_eq!(union, all, "resuming from {checkpoint:?} lost records");
    }
}

#[tokio::test]
async fn records_updated_while_the_feed_runs_are_read_again() {
    let (sim, _running, client) = start().await;
    let first = create_partners(
        &sim,
        "2024-03-01 10:00:00.500000",
        (0..30).map(|i| format!("p{i}")),
    );
    sim.clock().resume();
    let mut feed = ChangeFeed::new(&client, spec(10), None);
    let page = feed.next_page().await.unwrap().unwrap();
    let already = page.records[0].id().unwrap();
    // Meanwhile, someone edits a record already read and creates a new one.
    sim.clock()
        .freeze_at(parse_datetime("2024-03-02 08:00:00.000001").unwrap());
    let created = sim.with_database(|database, env| {
        let vals = json!({"name": "edited"}).as_object().cloned().unwrap();
        database
            .write(env, "res.partner", &[already], &vals)
            .unwrap();
        database
            .create(
                env,
                "res.partner",
                &[json!({"name": "late"}).as_object().cloned().unwrap()],
            )
            .unwrap()[0]
    });
    let mut seen: Vec<(i64, String)> = Vec::new();
    while let Some(page) = feed.next_page().await.unwrap() {
        seen.extend(page.records.iter().map(|r| {
            (
                r.id().unwrap(),
                r.str("name").unwrap().unwrap_or_default().to_owned(),
            )
        }));
    }
    assert!(
        seen.contains(&(already, "edited".into())),
        "the edit was not picked up"
    );
    assert!(seen.iter().any(|(id, _)| *id == created));
    assert!(first.iter().all(|id| seen.iter().any(|(s, _)| s == id)
        || *id == already
        || page.records.iter().any(|r| r.id().unwrap() == *id)));
}

#[tokio::test]
async fn archived_records_are_included_and_the_users_domain_applies() {
    let (sim, _running, client) = start().await;
    let ids = create_partners(
        &sim,
        "2024-03-01 10:00:00.000000",
        ["keep".to_owned(), "archived".to_owned(), "other".to_owned()],
    );
    sim.with_database(|database, env| {
        database
            .write(
                env,
                "res.partner",
                &[ids[1]],
                &json!({"active": false}).as_object().cloned().unwrap(),
            )
            .unwrap();
    });
    let mut filtered = spec(2);
    filtered.domain = field("name").is_in(["keep", "archived"]);
    let (seen, _) = drain(&client, filtered, None).await;
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        vec![ids[0], ids[1]]
    );
}

#[tokio::test]
async fn an_overlap_rewinds_to_a_whole_window() {
    let (sim, _running, client) = start().await;
    let early = create_partners(&sim, "2024-03-01 10:00:00.900000", ["early".to_owned()]);
    create_partners(&sim, "2024-03-01 10:02:00.100000", ["late".to_owned()]);
    let checkpoint = Checkpoint {
        second: odoo_rpc::value::parse_datetime("2024-03-01 10:02:00").unwrap(),
        last_id: Checkpoint::SECOND_DONE,
    };
    let (seen, _) = drain(&client, test_records_only(10), Some(checkpoint)).await;
    assert!(seen.is_empty());
    let rewound = checkpoint.rewound(jiff::SignedDuration::from_secs(120));
    let (seen, _) = drain(&client, test_records_only(10), Some(rewound)).await;
    assert!(seen.contains_key(&early[0]));
}

#[tokio::test]
async fn all_ids_pages_through_archived_records() {
    let (sim, _running, client) = start().await;
    create_partners(
        &sim,
        "2024-03-01 10:00:00.000000",
        (0..25).map(|i| format!("x{i}")),
    );
    let ids = engine::change_feed::all_ids(&client, "res.partner", &odoo_rpc::Domain::all(), 7)
        .await
        .unwrap();
    assert_eq!(
        ids.into_iter().collect::<BTreeSet<_>>(),
        all_partner_ids(&sim)
    );
}

#[tokio::test]
async fn the_seeds_keyset_predicate_cannot_get_past_a_full_second() {
    // Documents the trap the feed exists for: with the value read back, `=` matches nothing
    // and `>` returns the same second again, so the seed's second page equals its first.
    let (sim, _running, client) = start().await;
    create_partners(
        &sim,
        "2024-03-01 12:00:00.424242",
        (0..20).map(|i| format!("bulk {i}")),
    );
    let read_page = |domain: odoo_rpc::Domain| {
        let options = odoo_rpc::SearchReadOptions::new(
            domain & field("create_date").lt("2025-01-01 00:00:00"),
        )
        .fields(["write_date"])
        .order("write_date asc, id asc")
        .limit(5);
        let client = client.clone();
        async move { client.search_read("res.partner", &options).await.unwrap() }
    };
    let first = read_page(odoo_rpc::Domain::all()).await;
    let last = first.last().unwrap();
    let value = last.raw("write_date").unwrap().as_str().unwrap().to_owned();
    let last_id = last.id().unwrap();
    let naive = field("write_date").gt(value.as_str())
        | (field("write_date").eq(value.as_str()) & field("id").gt(last_id));
    let second = read_page(naive).await;
    let ids = |page: &[odoo_rpc::Record]| page.iter().map(|r| r.id().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&second));
}

#[tokio::test]
async fn an_empty_field_list_reads_every_field() {
    let (sim, _running, client) = start().await;
    create_partners(&sim, "2024-05-01 10:00:00", ["Zoë".to_owned()]);
    let mut spec = test_records_only(10);
    spec.fields.clear();
    let mut feed = ChangeFeed::new(&client, spec, None);
    let page = feed.next_page().await.unwrap().unwrap();
    let record = &page.records[0];
    for name in ["id", "name", "write_date", "email", "active", "country_id"] {
        assert!(record.raw(name).is_some(), "{name} missing from {record:?}");
    }
}

/// Runs a feed to its end and asserts it read no record twice.
async fn drain_once(mut feed: ChangeFeed<'_>) -> (BTreeSet<i64>, Vec<Checkpoint>) {
    let mut seen = BTreeSet::new();
    let mut checkpoints = Vec::new();
    while let Some(page) = feed.next_page().await.unwrap() {
        for record in &page.records {
            let id = record.id().unwrap();
            assert!(seen.insert(id), "record {id} read twice in one run");
        }
        checkpoints.push(page.checkpoint);
        assert!(checkpoints.len() < 10_000, "the feed does not progress");
    }
    (seen, checkpoints)
}

#[tokio::test]
async fn five_thousand_records_stamped_alike_are_each_read_once_with_pages_of_500() {
    let (sim, _running, client) = start().await;
    let bulk = create_partners(
        &sim,
        "2024-03-01 12:00:00.424242",
        (0..5000).map(|i| format!("bulk {i}")),
    );
    let after = create_partners(
        &sim,
        "2024-03-01 12:00:01.000001",
        (0..3).map(|i| format!("after {i}")),
    );
    sim.reset_calls();
    let feed = ChangeFeed::new(&client, test_records_only(500), None);
    let (seen, checkpoints) = drain_once(feed).await;
    let expected: BTreeSet<i64> = bulk.iter().chain(&after).copied().collect();
    assert_eq!(seen, expected);
    // Ten full pages, then the three of the next second.
    assert_eq!(checkpoints.len(), 11, "{checkpoints:?}");
    assert!(sim.call_count("res.partner", "search_read") <= 13);
    assert!(checkpoints.last().unwrap().is_second_done());
}

#[tokio::test]
async fn no_record_is_read_twice_whatever_the_page_size() {
    let (sim, _running, client) = start().await;
    // Microseconds unlike the ids, several seconds, and a bulk second larger than the pages.
    for (index, micros) in [900_000, 700_000, 500_000, 300_000, 100_000]
        .iter()
        .enumerate()
    {
        let at = format!("2024-03-01 12:00:05.{micros:06}");
        create_partners(&sim, &at, (0..7).map(|i| format!("m{index}-{i}")));
    }
    create_partners(
        &sim,
        "2024-03-01 12:00:06.250000",
        (0..40).map(|i| format!("bulk {i}")),
    );
    create_partners(&sim, "2024-03-01 12:00:07.000000", ["last".to_owned()]);
    for page_size in [1, 2, 3, 7, 10, 34, 35, 36, 41, 80] {
        let feed = ChangeFeed::new(&client, spec(page_size), None);
        let (seen, _) = drain_once(feed).await;
        assert_eq!(seen, all_partner_ids(&sim), "page size {page_size}");
    }
}

#[tokio::test]
async fn thousands_of_ids_already_read_in_a_second_are_left_out_in_bounded_requests() {
    let (sim, _running, client) = start().await;
    // 3,000 records of one second at microseconds unrelated to their ids: a page of 2,000
    // ordered by time ends inside the second with 2,000 scattered ids already read, more
    // than one `id not in` request carries.
    let mut ids = Vec::new();
    for chunk in 0..30_i64 {
        let micros = (chunk * 7_919) % 1_000_000;
        let at = format!("2024-03-01 12:00:09.{micros:06}");
        ids.extend(create_partners(
            &sim,
            &at,
            (0..100).map(|i| format!("c{chunk}-{i}")),
        ));
    }
    let expected: BTreeSet<i64> = ids.iter().copied().collect();
    for page_size in [2000, 999, 1001, 500] {
        let mut feed = ChangeFeed::new(&client, test_records_only(page_size), None);
        let mut seen = BTreeSet::new();
        while let Some(page) = feed.next_page().await.unwrap() {
            for record in &page.records {
                assert!(seen.insert(record.id().unwrap()), "read twice");
            }
        }
        assert_eq!(seen, expected, "page size {page_size}");
        let position = feed.position().unwrap();
        assert!(position.is_second_done(), "{position:?}");
        assert_eq!(
            odoo_rpc::value::format_datetime(position.second),
            "2024-03-01 12:00:09"
        );
    }
    // A feed told which ids of the second are already read reads only the others, once.
    let second = odoo_rpc::value::parse_datetime("2024-03-01 12:00:09").unwrap();
    let already: Vec<i64> = ids.iter().copied().filter(|id| id % 3 != 0).collect();
    let feed = ChangeFeed::within_second(&client, test_records_only(400), second, already);
    let (seen, _) = drain_once(feed).await;
    let rest: BTreeSet<i64> = ids.iter().copied().filter(|id| id % 3 == 0).collect();
    assert_eq!(seen, rest);
}

#[tokio::test]
async fn resuming_a_bulk_second_from_any_checkpoint_loses_nothing() {
    let (sim, _running, client) = start().await;
    create_partners(
        &sim,
        "2024-03-01 09:00:00.300000",
        (0..7).map(|i| format!("early {i}")),
    );
    create_partners(
        &sim,
        "2024-03-01 09:00:00.100000",
        (0..45).map(|i| format!("bulk {i}")),
    );
    create_partners(
        &sim,
        "2024-03-01 09:00:01.000000",
        (0..4).map(|i| format!("late {i}")),
    );
    let all = all_partner_ids(&sim);
    let mut feed = ChangeFeed::new(&client, spec(10), None);
    let mut before = BTreeSet::new();
    while let Some(page) = feed.next_page().await.unwrap() {
        before.extend(page.records.iter().map(|r| r.id().unwrap()));
        let resumed = ChangeFeed::new(&client, spec(10), Some(page.checkpoint));
        let (after, _) = drain_once(resumed).await;
        let union: BTreeSet<i64> = before.union(&after).copied().collect();
        assert_eq!(
            union, all,
            "resuming from {:?} lost records",
            page.checkpoint
        );
    }
}

#[tokio::test]
async fn a_backfill_takes_its_bounds_then_reads_by_id() {
    let (sim, _running, client) = start().await;
    let early = create_partners(
        &sim,
        "2024-03-01 09:00:00.900000",
        (0..25).map(|i| format!("a{i}")),
    );
    let late = create_partners(&sim, "2024-03-02 10:30:00.000001", ["z".to_owned()]);
    let spec = test_records_only(10);
    let bounds = engine::change_feed::backfill_bounds(&client, &spec)
        .await
        .unwrap();
    assert_eq!(
        bounds.high_water,
        Some(odoo_rpc::value::parse_datetime("2024-03-02 10:30:00").unwrap())
    );
    assert_eq!(bounds.last_id, Some(late[0]));
    let page = engine::change_feed::id_page(&client, &spec, early[3], early[20])
        .await
        .unwrap();
    let ids: Vec<i64> = page.iter().map(|r| r.id().unwrap()).collect();
    assert_eq!(ids, early[4..14].to_vec());
    assert!(page[0].raw("name").is_some() && page[0].raw("write_date").is_some());

    let checkpoint = Checkpoint::backfill(bounds.high_water.unwrap(), early[20]);
    assert_eq!(checkpoint.backfill_done_through(), Some(early[20]));
    assert!(!checkpoint.is_second_done());
    assert_eq!(
        Checkpoint::backfill(bounds.high_water.unwrap(), 0).backfill_done_through(),
        Some(0)
    );
    let rewound = checkpoint.rewound(jiff::SignedDuration::from_secs(120));
    assert_eq!(rewound.backfill_done_through(), Some(early[20]));
    assert_eq!(
        odoo_rpc::value::format_datetime(rewound.second),
        "2024-03-02 10:28:00"
    );
    // A feed handed a backfill checkpoint has no place in time to start from: it reads
    // everything rather than skip what the backfill has not reached.
    let (seen, _) = drain(&client, spec, Some(checkpoint)).await;
    assert!(early.iter().chain(&late).all(|id| seen.contains_key(id)));
}
