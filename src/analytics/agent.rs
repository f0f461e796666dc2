//! Who sent a request, from its `User-Agent` header: a person on some kind of device, or a bot.
//!
//! Analytics count people. A shared card link is fetched by many machines before (or instead of)
//! any person: link-preview fetchers of messengers and social networks, search and AI crawlers,
//! uptime monitors, scripts. Those are [`Visitor::Bot`]. Everything else is a
//! [`Visitor::Person`] with a coarse [`Device`] class for the dashboards.
//!
//! The header is client-controlled, so this is a best-effort filter for honest traffic, not a
//! security boundary: anyone can send a browser's user agent. The rules are lists of known
//! markers, matched case-insensitively:
//!
//! * known bot names (checked as substrings, see [`BOT_MARKERS`]);
//! * any *word* of the user agent ending in `bot` (`Googlebot`, `AdsBot-Google`,
//!   `Pingdom.com_bot_…`), where words are the runs of ASCII letters and digits. Matching whole
//!   words instead of the substring `bot` keeps real phones such as the Cubot brand
//!   (`CUBOT_X30`, `CUBOT NOTE 20`) and the odd device called `Robot` on the person side (see
//!   [`NOT_BOT_WORDS`]);
//! * generic crawler vocabulary (`crawl`, `spider`, `preview`, `headless`, …, see
//!   [`GENERIC_MARKERS`]) and HTTP client libraries (`curl`, `python-requests`, `okhttp`, …, see
//!   [`HTTP_CLIENT_MARKERS`]);
//! * a missing or blank header (every browser sends one), and WhatsApp's preview fetcher, whose
//!   user agent *starts with* `WhatsApp/` (a substring match would be wrong: people do not browse
//!   "in WhatsApp", but some in-app browsers mention the apps they were opened from).
//!
//! A user agent without `Mozilla/` is deliberately **not** a bot by itself: several in-app
//! browsers and native app web views send their own formats.
//!
//! In-app browsers of social apps are people: Facebook (`FBAN/FBIOS`), Instagram, LinkedIn
//! (`LinkedInApp`, while `LinkedInBot` is the preview fetcher), Snapchat, TikTok, and so on.

/// The class of device a person used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
}

impl Device {
    /// The stable lowercase name stored and reported: `"mobile"`, `"tablet"` or `"desktop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Desktop => "desktop",
        }
    }

    /// The inverse of [`Device::as_str`]: exactly `"mobile"`, `"tablet"` or `"desktop"`
    /// (lowercase, no surrounding whitespace); anything else is `None`.
    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "mobile" => Some(Device::Mobile),
            "tablet" => Some(Device::Tablet),
            "desktop" => Some(Device::Desktop),
            _ => None,
        }
    }
}

/// Who is behind a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visitor {
    /// A person, in a browser or an app's in-app browser.
    Person(Device),
    /// A crawler, a link-preview fetcher, a monitor, or an HTTP library.
    Bot,
}

/// Known bots, matched as lowercase substrings. Many also end in `bot` and would be caught by the
/// word rule; they are listed anyway so that the list documents what is known, and so that
/// the ones that do not (`facebookexternalhit`, `Google-InspectionTool`, `Bytespider`, …) are
/// caught.
pub const BOT_MARKERS: &[&str] = &[
    // Meta: link previews (Facebook, Messenger, Instagram) and crawlers.
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "meta-externalfetcher",
    // Messengers and social networks: link previews.
    "slackbot", // also Slackbot-LinkExpanding
    "slack-imgproxy",
    "twitterbot",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "pinterestbot",
    "redditbot",
    "skypeuripreview",
    "vkshare",
    "iframely",
    "embedly",
    // Search engines.
    "googlebot",
    "google-inspectiontool",
    "adsbot-google",
    "mediapartners-google",
    "storebot-google",
    "googleother",
    "google-pagerenderer",
    "apis-google",
    "bingbot",
    "bingpreview",
    "msnbot",
    "duckduckbot",
    "baiduspider",
    "yandexbot",
    "yandex.com/bots",
    "applebot",
    "yahoo! slurp",
    "petalbot",
    // AI crawlers and assistants.
    "bytespider",
    "gptbot",
    "chatgpt-user",
    "oai-searchbot",
    "claudebot",
    "claude-web",
    "claude-user",
    "anthropic-ai",
    "perplexitybot",
    "perplexity-user",
    "ccbot",
    "amazonbot",
    // SEO tools.
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
];

/// Generic vocabulary of automated clients, matched as lowercase substrings.
pub const GENERIC_MARKERS: &[&str] = &[
    "crawl", // also crawler
    "spider",
    "preview",
    "fetch",
    "scan",
    "monitor",
    "headless", // HeadlessChrome
    "lighthouse",
    "pingdom",
    "uptime",
    "slurp",
];

/// HTTP client libraries and API tools, matched as lowercase substrings. (Some, such as Rust's
/// `reqwest`, send no user agent at all by default; that is a bot too.)
pub const HTTP_CLIENT_MARKERS: &[&str] = &[
    "curl",
    "wget",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "java/",
    "okhttp",
    "apache-httpclient",
    "libwww-perl",
    "node-fetch",
    "axios",
    "undici",
    "postman",
    "insomnia",
    "reqwest",
    "http_request",
    "httpie",
    "guzzlehttp",
    "faraday",
    "dart:io",
    "scrapy",
];

/// Words ending in `bot` that are device names, not bots: the Cubot phone brand (`CUBOT_X30`,
/// `CUBOT NOTE 20`) and a bare `Robot` model name. Compared against whole lowercase words only,
/// so `UptimeRobot` (one word) is still a bot.
pub const NOT_BOT_WORDS: &[&str] = &["cubot", "robot"];

/// Classifies a `User-Agent` header value (`None` when the header is missing).
pub fn classify(user_agent: Option<&str>) -> Visitor {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return Visitor::Bot;
    };
    let ua = ua.to_ascii_lowercase();
    if is_bot(&ua) {
        Visitor::Bot
    } else {
        Visitor::Person(device(&ua))
    }
}

/// Whether a lowercase, trimmed, non-empty user agent is a bot.
fn is_bot(ua: &str) -> bool {
    // WhatsApp's preview fetcher: "WhatsApp/2.23.20.0 A", "WhatsApp/2.2336.7 i".
    ua.starts_with("whatsapp/")
        // Viber's preview fetcher likewise starts with its name.
        || ua.starts_with("viber/")
        || BOT_MARKERS.iter().any(|m| ua.contains(m))
        || GENERIC_MARKERS.iter().any(|m| ua.contains(m))
        || HTTP_CLIENT_MARKERS.iter().any(|m| ua.contains(m))
        || ua
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word.ends_with("bot") && !NOT_BOT_WORDS.contains(&word))
}

/// The device class of a lowercase user agent already known to be a person's.
fn device(ua: &str) -> Device {
    // iPadOS 13 and later sends, by default, the same "Macintosh; Intel Mac OS X" user agent as
    // desktop Safari ("Request Desktop Website" is on by default for iPads). Nothing in the
    // header tells the two apart server-side (only client-side touch detection could), so such
    // iPads are counted as desktops here. Only iPads in mobile mode, and in-app browsers that
    // keep the "iPad" token, are tablets.
    const TABLET: &[&str] = &["ipad", "tablet", "kindle", "silk/", "playbook"];
    const MOBILE: &[&str] = &["mobi", "iphone", "ipod", "windows phone", "opera mini"];
    if TABLET.iter().any(|m| ua.contains(m)) {
        Device::Tablet
    } else if MOBILE.iter().any(|m| ua.contains(m)) {
        // "mobi" covers "Mobile" (Android phones, "Mobile Safari") and "Opera Mobi".
        Device::Mobile
    } else if ua.contains("android") {
        // Android tablets' browsers leave "Mobile" out of the user agent (Chrome's documented
        // convention, followed by Samsung Internet and Firefox, which says "Tablet" anyway).
        Device::Tablet
    } else {
        Device::Desktop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(ua: &str) -> Device {
        match classify(Some(ua)) {
            Visitor::Person(d) => d,
            Visitor::Bot => panic!("classified as a bot: {ua}"),
        }
    }

    fn assert_bot(ua: &str) {
        assert_eq!(
            classify(Some(ua)),
            Visitor::Bot,
            "not classified as a bot: {ua}"
        );
    }

    #[test]
    fn device_names_round_trip() {
        for d in [Device::Mobile, Device::Tablet, Device::Desktop] {
            assert_eq!(Device::parse(d.as_str()), Some(d));
        }
        assert_eq!(Device::Mobile.as_str(), "mobile");
        assert_eq!(Device::Tablet.as_str(), "tablet");
        assert_eq!(Device::Desktop.as_str(), "desktop");
        assert_eq!(Device::parse("Mobile"), None);
        assert_eq!(Device::parse(" mobile"), None);
        assert_eq!(Device::parse(""), None);
        assert_eq!(Device::parse("phone"), None);
    }

    #[test]
    fn missing_or_blank_user_agent_is_a_bot() {
        assert_eq!(classify(None), Visitor::Bot);
        assert_eq!(classify(Some("")), Visitor::Bot);
        assert_eq!(classify(Some("   \t")), Visitor::Bot);
    }

    #[test]
    fn phones() {
        let phones = [
            // iPhone Safari.
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            // Chrome on iPhone.
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            // Firefox on iPhone.
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
            // Android Chrome on a phone (reduced user agent).
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Mobile Safari/537.36",
            // Android Chrome on a Pixel (full user agent).
            "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/119.0.6045.163 Mobile Safari/537.36",
            // Samsung Internet.
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 \
             (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            // Edge on Android.
            "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.6099.116 Mobile Safari/537.36 EdgA/120.0.2210.84",
            // Firefox on Android.
            "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
            // Opera Mini.
            "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 \
             Version/12.16",
            // Windows Phone.
            "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) \
             AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 \
             Edge/15.14977",
            // iPod touch.
            "Mozilla/5.0 (iPod touch; CPU iPhone OS 15_7 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/15.6.1 Mobile/15E148 Safari/604.1",
        ];
        for ua in phones {
            assert_eq!(person(ua), Device::Mobile, "{ua}");
        }
    }

    #[test]
    fn cubot_and_robot_phones_are_people() {
        // Both contain "bot" case-insensitively, with every kind of character after it.
        let phones = [
            "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 10; CUBOT NOTE 20) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 6.0; CUBOT DINOSAUR Build/MRA58K) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; Cubot; KingKong 3) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 11; Robot) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Mobile Safari/537.36",
        ];
        for ua in phones {
            assert_eq!(person(ua), Device::Mobile, "{ua}");
        }
    }

    #[test]
    fn tablets() {
        let tablets = [
            // iPad in mobile-site mode.
            "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            // Chrome on iPad.
            "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            // Galaxy Tab S7 (SM-T870), Samsung Internet: Android without "Mobile".
            "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) \
             SamsungBrowser/19.0 Chrome/102.0.5005.125 Safari/537.36",
            // Android Chrome on a tablet (reduced user agent).
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            // Firefox on an Android tablet.
            "Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0",
            // Amazon Fire, Silk.
            "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) \
             Silk/119.3.1 like Chrome/119.0.6045.193 Safari/537.36",
            // Kindle e-reader.
            "Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) AppleWebKit/531.2+ \
             (KHTML, like Gecko) Version/5.0 Safari/531.2+ Kindle/3.0+",
            // BlackBerry PlayBook.
            "Mozilla/5.0 (PlayBook; U; RIM Tablet OS 2.1.0; en-US) AppleWebKit/536.2+ \
             (KHTML, like Gecko) Version/7.2.1.0 Safari/536.2+",
        ];
        for ua in tablets {
            assert_eq!(person(ua), Device::Tablet, "{ua}");
        }
    }

    #[test]
    fn desktops() {
        let desktops = [
            // Windows Chrome.
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            // Windows Edge.
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            // macOS Safari (also what iPadOS 13+ Safari sends by default: see `device`).
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
            // Firefox on Linux.
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            // Firefox on Ubuntu.
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            // ChromeOS.
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
        ];
        for ua in desktops {
            assert_eq!(person(ua), Device::Desktop, "{ua}");
        }
    }

    #[test]
    fn in_app_browsers_are_people() {
        // Facebook on iPhone.
        assert_eq!(
            person(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/438.0.0.33.118;\
                 FBBV/540379458;FBDV/iPhone13,2;FBMD/iPhone;FBSN/iOS;FBSV/16.6;FBSS/3;FBID/phone;\
                 FBLC/en_US;FBOP/5;FBRV/542096556]"
            ),
            Device::Mobile
        );
        // Facebook on Android.
        assert_eq!(
            person(
                "Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) \
                 AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.163 \
                 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/442.0.0.35.109;]"
            ),
            Device::Mobile
        );
        // Instagram on iPhone.
        assert_eq!(
            person(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Mobile/15E148 Instagram 302.0.0.23.114 (iPhone13,2; \
                 iOS 16_6; en_US; en; scale=3.00; 1170x2532; 521713005)"
            ),
            Device::Mobile
        );
        // Instagram on Android.
        assert_eq!(
            person(
                "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) \
                 AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.5845.163 \
                 Mobile Safari/537.36 Instagram 300.0.0.29.110 Android (33/13; 420dpi; \
                 1080x2400; Google/google; Pixel 7; panther; panther; en_US; 514327624)"
            ),
            Device::Mobile
        );
        // LinkedIn's app browser ("LinkedInApp": a person; "LinkedInBot" is the fetcher).
        assert_eq!(
            person(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.5530"
            ),
            Device::Mobile
        );
        // Snapchat.
        assert_eq!(
            person(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.62.0.37 (like Safari/8617.2.4.10.8, \
                 panda)"
            ),
            Device::Mobile
        );
    }

    #[test]
    fn link_preview_fetchers_are_bots() {
        for ua in [
            "WhatsApp/2.23.20.0",
            "WhatsApp/2.2336.7 i",
            "WhatsApp/2.23.20.0 A",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebookexternalhit/1.1",
            "Facebot",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Slack-ImgProxy (+https://api.slack.com/robots)",
            "Twitterbot/1.0",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "Pinterestbot/1.0 (+http://www.pinterest.com/bot.html)",
            "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
            "Iframely/1.3.1 (+https://iframely.com/docs/about)",
            "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
            "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
            "Viber/13.3.0.2 CFNetwork/1240.0.4 Darwin/20.5.0",
        ] {
            assert_bot(ua);
        }
    }

    #[test]
    fn crawlers_are_bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            // Googlebot smartphone: "Android" and "Mobile", yet a bot.
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 \
             (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; Google-InspectionTool/1.0)",
            "AdsBot-Google (+http://www.google.com/adsbot.html)",
            "Mediapartners-Google",
            "Mozilla/5.0 (compatible; Storebot-Google/1.0)",
            "GoogleOther",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; \
             +http://www.apple.com/go/applebot)",
            "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) \
             Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; \
             +https://openai.com/gptbot)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; \
             +https://openai.com/bot",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; \
             +claudebot@anthropic.com)",
            "anthropic-ai",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; \
             +https://perplexity.ai/perplexitybot)",
            "CCBot/2.0 (https://commoncrawl.org/faq/)",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/600.2.5 \
             (KHTML, like Gecko) Version/8.0.2 Safari/600.2.5 (Amazonbot/0.1; \
             +https://developer.amazon.com/support/amazonbot)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            // Unknown bots, caught by the word rule only.
            "Mozilla/5.0 (compatible; SomeNewBot/0.1)",
            "Mozilla/5.0 (compatible; Example-bot; +https://example.com)",
            "ExampleRobot/2.0",
        ] {
            assert_bot(ua);
        }
    }

    #[test]
    fn monitors_and_headless_browsers_are_bots() {
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             HeadlessChrome/120.0.6099.109 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "Site24x7 Monitor",
            "Mozilla/5.0 (compatible; SiteCrawler/1.0)",
            "Some Link Preview Service",
            "FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)",
            "Mozilla/5.0 (compatible; SecurityScanner/1.0)",
        ] {
            assert_bot(ua);
        }
    }

    #[test]
    fn http_libraries_are_bots() {
        for ua in [
            "curl/8.4.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Python-urllib/3.11",
            "Python/3.11 aiohttp/3.9.1",
            "python-httpx/0.25.2",
            "Go-http-client/1.1",
            "Go-http-client/2.0",
            "Java/17.0.9",
            "okhttp/4.12.0",
            "Apache-HttpClient/4.5.14 (Java/17.0.9)",
            "libwww-perl/6.72",
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            "node-fetch",
            "axios/1.6.2",
            "undici",
            "PostmanRuntime/7.36.0",
            "insomnia/2023.5.8",
            "reqwest/0.12",
            "HTTPie/3.2.2",
            "GuzzleHttp/7",
            "Faraday v2.7.11",
            "Dart/3.2 (dart:io)",
            "Scrapy/2.11.0 (+https://scrapy.org)",
        ] {
            assert_bot(ua);
        }
    }

    #[test]
    fn matching_is_case_insensitive() {
        assert_bot("GOOGLEBOT/2.1");
        assert_bot("CURL/8.0");
        assert_bot("whatsapp/2.23.20.0");
        assert_eq!(
            person("MOZILLA/5.0 (IPHONE; CPU IPHONE OS 17_1 LIKE MAC OS X) MOBILE/15E148"),
            Device::Mobile
        );
    }

    #[test]
    fn whatsapp_is_a_bot_only_as_a_prefix() {
        // A (hypothetical) in-app browser mentioning WhatsApp is still a person.
        assert_eq!(
            person(
                "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0.0.0 Mobile Safari/537.36 WhatsApp/2.23.20.0"
            ),
            Device::Mobile
        );
    }

    #[test]
    fn unknown_non_browser_formats_are_people() {
        // No "Mozilla/" is not enough to call something a bot.
        assert_eq!(person("SomeApp/1.0 (iOS 17.1; iPhone)"), Device::Mobile);
        assert_eq!(
            person("Opera/9.80 (Windows NT 6.1) Presto/2.12"),
            Device::Desktop
        );
    }
}
