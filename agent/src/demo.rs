//! `flowscope demo`: realistic flows driven through the real Rust SDK over the real socket.

use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use flowscope::{Client, Config, EntryType, ErrorInfo, LogLevel};

use crate::config::DemoArgs;

/// Starts the demo on a background thread.
pub fn spawn(socket: PathBuf, args: DemoArgs) {
    std::thread::spawn(move || {
        let client = Client::new(Config::from_env("flowscope-demo").socket(socket));
        let mut round = 0u32;
        loop {
            round += 1;
            run_round(&client, round);
            client.flush(Duration::from_secs(2));
            if args.once {
                return;
            }
            sleep(args.interval);
        }
    });
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One round: a registration, a three-message chat thread, an order with a retry and a failure.
pub fn run_round(client: &Client, round: u32) {
    user_registration(client);
    chat_thread(client, &format!("thread-{round}"));
    order(client, &format!("order-{}", 1000 + round));
}

fn user_registration(client: &Client) {
    let trace = client
        .trace("user-registration")
        .entry(EntryType::Api, "validate-user")
        .start();
    {
        let _step = flowscope::step("validate-user").start();
        flowscope::state_get("user.email").time(|| sleep(ms(15)));
        flowscope::state_set("validation.status").time(|| sleep(ms(8)));
        flowscope::state_set("validation.result").time(|| sleep(ms(12)));
        flowscope::emit("user.validated")
            .to("save-user")
            .time(|| sleep(ms(5)));
    }
    {
        let _step = flowscope::step("save-user").start();
        flowscope::state_get("validation.result").time(|| sleep(ms(8)));
        flowscope::stream_set("users", "user-42").time(|| sleep(ms(45)));
        flowscope::state_set("user.saved").time(|| sleep(ms(10)));
        flowscope::emit("user.saved")
            .to("send-email")
            .time(|| sleep(ms(3)));
    }
    {
        let _step = flowscope::step("send-email").start();
        flowscope::state_get("user.saved").time(|| sleep(ms(5)));
        flowscope::stream_set("email-queue", "email-7").time(|| sleep(ms(25)));
        flowscope::state_set("email.queued").time(|| sleep(ms(8)));
        flowscope::log(LogLevel::Info, "welcome email queued");
    }
    trace.end();
}

fn chat_thread(client: &Client, thread: &str) {
    let messages = [
        (
            "Hello, what's the weather?",
            "It's sunny and 22°C in Lisbon.",
            ["get-weather", "format-response", "send-reply"],
        ),
        (
            "What about tomorrow?",
            "Tomorrow brings light rain, 18°C.",
            ["get-context", "get-forecast", "format-response"],
        ),
        (
            "Thanks!",
            "You're welcome!",
            ["process-gratitude", "send-reply", "close-thread"],
        ),
    ];
    for (i, (question, answer, steps)) in messages.iter().enumerate() {
        if i > 0 {
            sleep(ms(400)); // the user thinking: a gap in the group view
        }
        let trace = client
            .trace("chat-message")
            .entry(EntryType::Api, steps[0])
            .correlation_id(thread)
            .start();
        for (j, name) in steps.iter().enumerate() {
            let _step = flowscope::step(*name).start();
            flowscope::state_get(format!("{thread}.history")).time(|| sleep(ms(3)));
            if j == 1 {
                flowscope::llm("gpt-4o-mini")
                    .provider("openai")
                    .prompt(format!("[{{\"role\":\"user\",\"content\":{question:?}}}]"))
                    .response(*answer)
                    .tokens(42 + i as u64 * 10, 18 + i as u64 * 4)
                    .cost(0.00021)
                    .duration(ms(120))
                    .record();
                sleep(ms(30));
            }
            if j + 1 < steps.len() {
                flowscope::emit(format!("chat.{name}.done"))
                    .to(steps[j + 1])
                    .record();
            } else {
                flowscope::state_set(format!("{thread}.history")).time(|| sleep(ms(2)));
            }
        }
        trace.end();
    }
}

fn order(client: &Client, order_id: &str) {
    let create = client
        .trace("order-processing")
        .entry(EntryType::Api, "create-order")
        .correlation_id(order_id)
        .start();
    {
        let _step = flowscope::step("create-order").start();
        flowscope::state_set(format!("orders.{order_id}")).time(|| sleep(ms(6)));
        flowscope::emit("order.created")
            .to("process-payment")
            .time(|| sleep(ms(2)));
    }
    let parent = create.id();
    create.end();

    let process = client
        .trace("order-processing")
        .entry(EntryType::Event, "process-payment")
        .parent_trace(parent)
        .correlation_id(order_id)
        .start();
    {
        let _step = flowscope::step("process-payment").start();
        flowscope::stream_send("payments").time(|| sleep(ms(20)));
        flowscope::retry(1, Some("payment gateway timeout"), Some(ms(50)));
        sleep(ms(50));
        flowscope::stream_send("payments").time(|| sleep(ms(15)));
        flowscope::checkpoint(format!("{order_id}-paid"));
        flowscope::transition("pending", "paid", Some("charge"));
    }
    {
        let step = flowscope::step("reserve-inventory").start();
        flowscope::state_get("inventory.sku-123").time(|| sleep(ms(4)));
        flowscope::log(LogLevel::Error, "sku-123 out of stock");
        let error = ErrorInfo {
            error_type: Some("OutOfStock".into()),
            code: Some("E_STOCK".into()),
            stack: Some("reserve_inventory (inventory.rs:42)\nprocess_order (orders.rs:17)".into()),
            ..ErrorInfo::new("sku-123 is out of stock")
        };
        step.fail(error.clone());
        process.fail(error);
    }
}
