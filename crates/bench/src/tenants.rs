//! `odoo-bridge-bench sim-tenants` (a helper process): many simulated Odoo 18 databases, each
//! on a port of its own, for the delivery benchmarks. See [`serve`] for its commands.

use crate::child::stdin_lines;
use crate::exit::{Failure, failure};
use crate::procfs::thread_cpu_seconds;
use clap::Args;
use odoo_rpc::{Domain, field};
use odoo_sim::dispatch::ModelCall;
use odoo_sim::{DataSpec, OdooSim, SimConfig};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

#[derive(Debug, Args)]
pub struct TenantsArgs {
    /// Tenants: databases `<database>_01`, `<database>_02`, …
    #[arg(long)]
    pub tenants: u16,
    /// Customers generated in each tenant.
    #[arg(long)]
    pub partners: usize,
    /// Product templates generated in each tenant.
    #[arg(long)]
    pub products: usize,
    #[arg(long, default_value = "tenant")]
    pub database: String,
    /// The first tenant's data seed; each next tenant's is one more.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub async fn serve(args: TenantsArgs) -> Result<(), Failure> {
    serve_tenants(TenantsSpec {
        tenants: usize::from(args.tenants),
        config: SimConfig {
            database: args.database,
            ..SimConfig::default()
        },
        data: DataSpec {
            seed: args.seed,
            partners: args.partners,
            products: args.products,
            orders: 0,
        },
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
    })
    .await
}

/// What the helper serves.
#[derive(Debug, Clone)]
struct TenantsSpec {
    tenants: usize,
    /// The database name is the tenants' prefix.
    config: SimConfig,
    /// Partners and products of each tenant; the seed is shifted per tenant.
    data: DataSpec,
    host: IpAddr,
}

/// What orders are made of, in one tenant.
struct Catalog {
    /// `(customer, shipping address)`: the customer itself, or one of its delivery addresses.
    customers: Vec<(i64, i64)>,
    products: Vec<i64>,
}

struct Tenant {
    sim: OdooSim,
    catalog: Catalog,
}

fn catalog(sim: &OdooSim) -> Result<Catalog, Failure> {
    sim.with_database(|database, env| {
        let customers = database.search(
            env,
            "res.partner",
            &field("customer_rank").gt(0),
            0,
            None,
            Some("id"),
        )?;
        let addresses = database.search(
            env,
            "res.partner",
            &field("type").eq("delivery"),
            0,
            None,
            Some("id"),
        )?;
        let mut shipping: HashMap<i64, i64> = HashMap::new();
        for address in addresses {
            if let Some(parent) = database
                .value_by_name("res.partner", address, "parent_id")
                .as_ref_id()
            {
                shipping.entry(parent).or_insert(address);
            }
        }
        let products =
            database.search(env, "product.product", &Domain::all(), 0, None, Some("id"))?;
        Ok(Catalog {
            customers: customers
                .into_iter()
                .map(|customer| {
                    (
                        customer,
                        shipping.get(&customer).copied().unwrap_or(customer),
                    )
                })
                .collect(),
            products,
        })
    })
    .map_err(|error: odoo_sim::OdooException| failure(format!("cannot read the catalog: {error}")))
    .and_then(|catalog| {
        if catalog.customers.is_empty() || catalog.products.is_empty() {
            Err(failure(
                "a tenant has no customers or no products: give --partners and --products",
            ))
        } else {
            Ok(catalog)
        }
    })
}

/// Writes `total` orders of `lines` lines spread over the tenants, each tenant's in one
/// transaction (so they share its `write_date`), and confirms them with `action_confirm`.
fn create_orders(tenants: &[Tenant], total: usize, lines: usize) -> Value {
    let started = Instant::now();
    let cpu_before = thread_cpu_seconds();
    let count = tenants.len().max(1);
    let mut written = Vec::with_capacity(count);
    let mut orders = Vec::with_capacity(count);
    let mut serial = 0usize;
    for (index, tenant) in tenants.iter().enumerate() {
        let wanted = total / count + usize::from(index < total % count);
        let catalog = &tenant.catalog;
        let outcome = tenant.sim.with_database(|database, env| {
            let vals: Vec<Map<String, Value>> = (0..wanted)
                .map(|_| {
                    serial += 1;
                    let (customer, shipping) = catalog.customers[serial % catalog.customers.len()];
                    let order_lines: Vec<Value> = (0..lines)
                        .map(|line| {
                            let product =
                                catalog.products[(serial * 7 + line * 13) % catalog.products.len()];
                            let mut vals = json!({
                                "product_id": product,
                                "product_uom_qty": 1 + (serial + line) % 4,
                            });
                            if (serial + line).is_multiple_of(5) {
                                vals["price_unit"] = json!(29.95);
                            }
                            json!([0, 0, vals])
                        })
                        .collect();
                    let mut order = Map::new();
                    order.insert("partner_id".into(), json!(customer));
                    order.insert("partner_shipping_id".into(), json!(shipping));
                    order.insert("client_order_ref".into(), json!(format!("BENCH-{serial}")));
                    order.insert("order_line".into(), Value::Array(order_lines));
                    order
                })
                .collect();
            let ids = database.create(env, "sale.order", &vals)?;
            let confirm = ModelCall {
                model: "sale.order".into(),
                method: "action_confirm".into(),
                ids: Some(ids.clone()),
                params: Map::new(),
            };
            odoo_sim::dispatch::run(database, env, &confirm)?;
            Ok::<_, odoo_sim::OdooException>((env.now, ids.len()))
        });
        match outcome {
            Ok((at, made)) => {
                written.push(at);
                orders.push(made);
            }
            Err(error) => {
                return json!({"error": format!("tenant {}: {error}", index + 1)});
            }
        }
    }
    json!({
        "written_micros": written,
        "orders": orders,
        "seconds": started.elapsed().as_secs_f64(),
        "cpu_seconds": thread_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before),
    })
}

fn calls(tenants: &[Tenant]) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for tenant in tenants {
        for ((model, method), count) in tenant.sim.calls() {
            *counts.entry(format!("{model}/{method}")).or_insert(0) += count;
        }
    }
    let total: u64 = counts.values().sum();
    json!({"calls": counts, "total": total})
}

/// Serves the tenants until standard input reaches its end. Prints one JSON line of details
/// (`tenants: [{url, database}]`, `login`, `api_key`), then answers each command line with
/// one JSON line:
/// - `orders TOTAL LINES`: writes and confirms TOTAL orders of LINES lines, spread evenly,
///   each tenant's in one transaction; answers each tenant's write instant (µs; the orders'
///   `write_date` before Odoo truncates it to the second), the orders made, and the time
///   and CPU it took;
/// - `calls`: every tenant's call counters, summed per `model/method`.
async fn serve_tenants(spec: TenantsSpec) -> Result<(), Failure> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tenants = Vec::with_capacity(spec.tenants);
    let mut details = Vec::with_capacity(spec.tenants);
    for index in 0..spec.tenants {
        let config = SimConfig {
            database: format!("{}_{:02}", spec.config.database, index + 1),
            ..spec.config.clone()
        };
        let data = DataSpec {
            seed: spec.data.seed.wrapping_add(index as u64),
            ..spec.data.clone()
        };
        let sim = OdooSim::with_data(config, &data);
        let catalog = catalog(&sim)?;
        let listener = TcpListener::bind(SocketAddr::new(spec.host, 0))
            .await
            .map_err(|e| failure(format!("cannot listen on {}: {e}", spec.host)))?;
        let address = listener.local_addr().map_err(failure)?;
        let mut stopped = stopped.clone();
        tokio::spawn(sim.clone().serve(listener, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        details.push(json!({
            "url": format!("http://{address}"),
            "database": sim.config().database,
        }));
        tenants.push(Tenant { sim, catalog });
    }
    say!(
        "{}",
        json!({
            "tenants": details,
            "login": spec.config.admin_login,
            "api_key": spec.config.admin_api_key,
            "odoo_version": spec.config.version.to_string(),
        })
    );
    let tenants = Arc::new(tenants);
    let mut commands = stdin_lines();
    while let Some(command) = commands.recv().await {
        let words: Vec<&str> = command.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["orders", total, lines] => match (total.parse::<usize>(), lines.parse::<usize>()) {
                (Ok(total), Ok(lines)) => {
                    let tenants = tenants.clone();
                    tokio::task::spawn_blocking(move || create_orders(&tenants, total, lines))
                        .await
                        .unwrap_or_else(|e| json!({"error": e.to_string()}))
                }
                _ => json!({"error": "usage: orders TOTAL LINES"}),
            },
            ["calls"] => calls(&tenants),
            _ => json!({"error": format!("unknown command {command:?}")}),
        };
        say!("{reply}");
    }
    let _ = stop.send(true);
    Ok(())
}
