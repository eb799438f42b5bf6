"""The conversation sidebar in real Chromium: new chat, date groups, rename, pin, delete and
undo, search, paging, and the keyboard shortcuts that reach them."""

from __future__ import annotations

from typing import Any

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer


def seed(live: LiveServer, script: str) -> None:
    """Run ORM code in the live server's database (conversations for alice, mostly)."""
    live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from chat.models import Conversation, Message\n"
        "from django.utils import timezone\nfrom datetime import timedelta\n"
        "alice = User.objects.get(username='alice')\n" + script,
    )


def titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#conversations a.conversation").all_inner_texts()]


def groups(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#conversations .group-title").all_text_contents()]


def open_menu(page: Any, title: str) -> None:
    page.get_by_role("button", name=f"Options for {title}").click()
    page.locator("#conversation-menu").wait_for(state="visible")


SEED_DATES = """
def make(title, days, **kw):
    c = Conversation.objects.create(owner=alice, title=title, **kw)
    Message.objects.create(conversation=c, role='user', content='about ' + title)
    Conversation.objects.filter(id=c.id).update(updated=timezone.now() - timedelta(days=days))
make('Ancient', 40)
make('Last week', 3)
make('Yesterday one', 1)
make('Fresh', 0)
make('Pinned old', 90, pinned=True)
"""


def test_conversations_are_grouped_by_date_with_pinned_on_top_and_can_be_pinned(page: Any, live: LiveServer) -> None:
    seed(live, SEED_DATES)
    log_in(page, live)
    assert groups(page) == ["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"]
    assert titles(page) == ["Pinned old", "Fresh", "Yesterday one", "Last week", "Ancient"]

    open_menu(page, "Ancient")
    page.get_by_role("menuitem", name="Pin").click()
    page.wait_for_function("() => document.querySelectorAll('#conversations .group')[0].innerText.includes('Ancient')")
    assert titles(page)[:2] == ["Ancient", "Pinned old"]  # newest pinned first
    page.reload()
    assert titles(page)[:2] == ["Ancient", "Pinned old"]

    open_menu(page, "Ancient")
    page.get_by_role("menuitem", name="Unpin").click()
    page.wait_for_function("() => !document.querySelectorAll('#conversations .group')[0].innerText.includes('Ancient')")
    assert groups(page)[-1] == "Older"
    assert not page.console_errors, page.console_errors


def test_a_conversation_that_gets_a_message_moves_to_today(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    seed(live, SEED_DATES)
    fake_server.enqueue(Script(tokens=["Still here."]))
    log_in(page, live)
    page.get_by_role("link", name="Ancient").click()
    page.wait_for_url("**/chat/*-*/")
    page.fill("#prompt", "Anything new?")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    assert titles(page)[:2] == ["Pinned old", "Ancient"] and groups(page)[:2] == ["Pinned", "Today"]


def test_a_conversation_is_renamed_inline_with_enter_and_esc_cancels(page: Any, live: LiveServer) -> None:
    seed(live, "Conversation.objects.create(owner=alice, title='Old name')")
    log_in(page, live)
    open_menu(page, "Old name")
    page.get_by_role("menuitem", name="Rename").click()
    box = page.get_by_role("textbox", name="New title")
    assert box.evaluate("el => el === document.activeElement")
    box.fill("Thrown away")
    box.press("Escape")
    assert titles(page) == ["Old name"]
    assert page.get_by_role("link", name="Old name").evaluate("el => el === document.activeElement")

    open_menu(page, "Old name")
    page.keyboard.press("Enter")  # the first item, Rename, has focus
    page.get_by_role("textbox", name="New title").fill("Holiday plans")
    with page.expect_response("**/edit/"):  # shown at once, saved in the background
        page.keyboard.press("Enter")
    assert titles(page) == ["Holiday plans"]
    page.reload()
    assert titles(page) == ["Holiday plans"]


def test_a_deleted_conversation_can_be_brought_back_with_undo(page: Any, live: LiveServer) -> None:
    seed(
        live,
        "Conversation.objects.create(owner=alice, title='Keep'); Conversation.objects.create(owner=alice, title='Doomed')",
    )
    log_in(page, live)
    open_menu(page, "Doomed")
    page.get_by_role("menuitem", name="Delete").click()
    toast = page.locator("#toast")
    toast.get_by_text("Deleted “Doomed”.").wait_for()
    assert titles(page) == ["Keep"]
    undo = toast.get_by_role("button", name="Undo")
    assert undo.evaluate("el => el === document.activeElement")  # a keyboard user can undo at once
    undo.click()
    page.wait_for_function("() => document.querySelectorAll('#conversations a.conversation').length === 2")
    assert sorted(titles(page)) == ["Doomed", "Keep"]

    open_menu(page, "Doomed")
    page.get_by_role("menuitem", name="Delete").click()
    toast.get_by_text("Deleted “Doomed”.").wait_for()
    page.reload()
    assert titles(page) == ["Keep"]


def test_deleting_the_open_conversation_goes_to_a_new_chat(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    fake_server.enqueue(Script(tokens=["Hi", " there"]))
    log_in(page, live)
    page.fill("#prompt", "Say hi")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    assert "/chat/" in page.url and page.url.rstrip("/") != live.url + "/chat"
    open_menu(page, "Say hi")
    page.get_by_role("menuitem", name="Delete").click()
    page.wait_for_url(live.url + "/chat/")
    assert page.locator(".message").count() == 0 and titles(page) == []


def test_search_finds_message_text_and_esc_clears_it(page: Any, live: LiveServer) -> None:
    seed(
        live,
        """
c = Conversation.objects.create(owner=alice, title='Kitchen')
Message.objects.create(conversation=c, role='user', content='How long to boil an egg?')
Conversation.objects.create(owner=alice, title='Trip to Lisbon')
Conversation.objects.create(owner=alice, title='Taxes')
""",
    )
    log_in(page, live)
    page.keyboard.press("Control+k")
    search = page.get_by_role("searchbox", name="Search conversations")
    assert search.evaluate("el => el === document.activeElement")
    page.keyboard.type("EGG")
    page.wait_for_function("() => document.querySelectorAll('#conversations a.conversation').length === 1")
    assert titles(page) == ["Kitchen"] and groups(page) == ["Search results"]
    assert "1 conversations match" in page.locator("#search-status").inner_text()
    search.fill("lisbon")
    page.wait_for_function(
        "() => document.querySelector('#conversations a.conversation')?.innerText === 'Trip to Lisbon'"
    )
    search.fill("zebra")
    page.get_by_text("No conversations match").first.wait_for()
    search.press("Escape")
    page.wait_for_function("() => document.querySelectorAll('#conversations a.conversation').length === 3")
    page.get_by_role("link", name="Kitchen").click()
    page.locator(".message-body").first.wait_for()
    assert "boil an egg" in page.locator(".message-body").first.inner_text()


def test_long_lists_page_in_with_load_more(page: Any, live: LiveServer) -> None:
    seed(
        live,
        """
now = timezone.now()
rows = Conversation.objects.bulk_create([Conversation(owner=alice, title=f'chat {i:03}') for i in range(120)])
for i, c in enumerate(rows):
    c.updated = now - timedelta(minutes=i)
Conversation.objects.bulk_update(rows, ['updated'])
""",
    )
    log_in(page, live)
    assert len(titles(page)) == 50
    page.get_by_role("button", name="Load more").click()
    page.wait_for_function("() => document.querySelectorAll('#conversations a.conversation').length === 100")
    page.get_by_role("button", name="Load more").click()
    page.wait_for_function("() => document.querySelectorAll('#conversations a.conversation').length === 120")
    assert page.get_by_role("button", name="Load more").is_hidden()
    assert titles(page)[0] == "chat 000" and titles(page)[-1] == "chat 119"


def test_keyboard_shortcuts_open_a_new_chat_and_the_help_dialog(page: Any, live: LiveServer) -> None:
    seed(live, "Conversation.objects.create(owner=alice, title='Somewhere')")
    log_in(page, live)
    page.get_by_role("link", name="Somewhere").click()
    page.wait_for_url("**/chat/*-*/")
    page.keyboard.press("Control+Shift+O")
    page.wait_for_url(live.url + "/chat/")
    assert page.locator("#prompt").evaluate("el => el === document.activeElement")

    page.locator("body").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    dialog.wait_for()
    text = dialog.inner_text()
    for words in ("New chat", "Search conversations", "Send the message", "Show these shortcuts"):
        assert words in text
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.keyboard.press("Control+Shift+S")
    assert page.locator("#sidebar").is_hidden()
    page.keyboard.press("Control+Shift+S")
    assert page.locator("#sidebar").is_visible()
    page.locator("#prompt").focus()
    page.keyboard.press("Control+/")
    dialog.wait_for()
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="hidden")
    assert page.locator("#prompt").input_value() == ""  # no stray "?" typed anywhere


def test_a_generated_title_reaches_the_sidebar_and_the_tab_title_without_a_reload(
    page: Any, fake_server: FakeProvider
) -> None:
    server = LiveServer(extra_env={"PARLEY_AUTO_TITLES": "1"}).start()
    try:
        server.create_user("alice", "alice-password-1")
        server.add_fake_provider(fake_server.url, model="fake-model=Fake Model", default="fake-model", label="Fake Lab")
        fake_server.enqueue(Script(tokens=["Four."]))
        fake_server.enqueue(Script(tokens=["Simple", " arithmetic"]))
        log_in(page, server)
        page.fill("#prompt", "what is two plus two")
        page.keyboard.press("Enter")
        page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
        page.wait_for_function(
            "() => document.querySelector('#conversations a.conversation')?.innerText === 'Simple arithmetic'"
        )
        assert page.title() == "Simple arithmetic · Parley"
    finally:
        server.stop()
