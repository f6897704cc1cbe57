//! The timestamp trap: `write_date` is stored with microseconds, read back truncated to the
//! second, and compared in domains at full precision. A cursor built from the value read
//! back matches nothing with `=`, and `>` still matches the rows of that very second.

use crate::support::{BOTH, Sim, vals};
use odoo_rpc::value::format_datetime;
use odoo_rpc::{Domain, OdooClient, OdooDateTime, SearchReadOptions, field};
use odoo_sim::OdooVersion;
use odoo_sim::values::parse_datetime;
use serde::Deserialize;
use serde_json::json;

fn micros(text: &str) -> i64 {
    parse_datetime(text).unwrap_or_else(|| panic!("bad datetime {text}"))
}

async fn count(client: &OdooClient, scope: &Domain, domain: Domain) -> u64 {
    client
        .search_count("res.partner", &(scope.clone() & domain), None)
        .await
        .unwrap()
}

#[derive(Debug, Deserialize)]
struct Stamped {
    id: i64,
    write_date: OdooDateTime,
    create_date: OdooDateTime,
}

#[tokio::test]
async fn write_date_is_read_truncated_but_compared_at_full_precision() {
    for transport in BOTH {
        let sim = Sim::start(OdooVersion::V19).await;
        let client = sim.client(transport);
        client.uid().await.unwrap();

        // One call at .250000 creates two records; another at .750000 of the same second
        // creates a third.
        sim.sim
            .clock()
            .freeze_at(micros("2024-05-01 10:00:00.250000"));
        let first = client
            .create(
                "res.partner",
                vec![vals(json!({"name": "one"})), vals(json!({"name": "two"}))],
                None,
            )
            .await
            .unwrap();
        sim.sim
            .clock()
            .freeze_at(micros("2024-05-01 10:00:00.750000"));
        let second = client
            .create("res.partner", vec![vals(json!({"name": "three"}))], None)
            .await
            .unwrap();
        let all = [first[0], first[1], second[0]];
        let scope = field("id").is_in(all);

        let rows = client
            .read("res.partner", &all, &["write_date", "create_date"], None)
            .await
            .unwrap();
        for row in &rows {
            assert_eq!(
                row.raw("write_date"),
                Some(&json!("2024-05-01 10:00:00")),
                "{transport:?}: read back truncated to the second"
            );
        }
        let read_back = rows[0].datetime("write_date").unwrap().unwrap();
        let cursor = format_datetime(read_back);
        assert_eq!(cursor, "2024-05-01 10:00:00");

        // The value read back equals none of the stored values...
        assert_eq!(
            count(&client, &scope, field("write_date").eq(cursor.as_str())).await,
            0
        );
        // ...and every record of that second is still "after" it.
        assert_eq!(
            count(&client, &scope, field("write_date").gt(cursor.as_str())).await,
            3
        );
        assert_eq!(
            count(&client, &scope, field("write_date").gte(cursor.as_str())).await,
            3
        );
        assert_eq!(
            count(
                &client,
                &scope,
                field("write_date").lt("2024-05-01 10:00:01")
            )
            .await,
            3
        );
        // Full precision tells the two transactions apart.
        assert_eq!(
            count(
                &client,
                &scope,
                field("write_date").eq("2024-05-01 10:00:00.250000")
            )
            .await,
            2
        );
        assert_eq!(
            count(
                &client,
                &scope,
                field("write_date").gt("2024-05-01 10:00:00.500000")
            )
            .await,
            1
        );

        // Ordering uses the stored microseconds: the later call first, whatever the ids.
        let ordered = client
            .search(
                "res.partner",
                &SearchReadOptions::new(scope.clone()).order("write_date desc, id asc"),
            )
            .await
            .unwrap();
        assert_eq!(ordered, vec![second[0], first[0], first[1]]);

        // Typed: every record one call touched carries the same stamp, created = written.
        let typed: Vec<Stamped> = client
            .read_as("res.partner", &all, &["write_date", "create_date"], None)
            .await
            .unwrap();
        assert_eq!(typed.len(), 3);
        for row in &typed {
            assert_eq!(row.write_date, row.create_date, "{}", row.id);
            assert_eq!(row.write_date.to_string(), "2024-05-01 10:00:00");
        }

        // A write in a later second moves write_date but not create_date.
        sim.sim
            .clock()
            .freeze_at(micros("2024-05-01 10:00:02.000001"));
        client
            .write("res.partner", &[first[1]], vals(json!({"ref": "R2"})), None)
            .await
            .unwrap();
        let touched = client
            .read_as::<Stamped, _>(
                "res.partner",
                &[first[1]],
                &["write_date", "create_date"],
                None,
            )
            .await
            .unwrap();
        assert_eq!(touched[0].write_date.to_string(), "2024-05-01 10:00:02");
        assert_eq!(touched[0].create_date.to_string(), "2024-05-01 10:00:00");
        assert_eq!(
            count(
                &client,
                &scope,
                field("write_date").gt("2024-05-01 10:00:02")
            )
            .await,
            1
        );
    }
}
