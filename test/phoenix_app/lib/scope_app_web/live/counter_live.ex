defmodule ScopeAppWeb.CounterLive do
  @moduledoc """
  A counter: `handle_event("inc")` changes it from the browser, `handle_info` takes the
  cart's total from its PubSub broadcasts, a form sends a password and a card number
  over the websocket (`handle_event("save")`), a component has events of its own, and
  `handle_event("crash")` raises.
  """
  use ScopeAppWeb, :live_view

  @impl true
  def mount(_params, _session, socket) do
    if connected?(socket), do: Phoenix.PubSub.subscribe(ScopeApp.PubSub, "cart")
    {:ok, assign(socket, count: 0, cart_total: 0, saved: nil)}
  end

  @impl true
  def handle_event("inc", params, socket) do
    by = params |> Map.get("by", "1") |> to_string() |> String.to_integer()
    {:noreply, update(socket, :count, &(&1 + by))}
  end

  def handle_event("save", %{"note" => note}, socket),
    do: {:noreply, assign(socket, :saved, note)}

  def handle_event("crash", _params, _socket), do: raise(ArgumentError, "crash requested")

  @impl true
  def handle_info({:cart_changed, total}, socket),
    do: {:noreply, assign(socket, :cart_total, total)}

  @impl true
  def render(assigns) do
    ~H"""
    <div id="counter">
      <span id="count"><%= @count %></span>
      <span id="cart-total"><%= @cart_total %></span>
      <button id="inc" phx-click="inc" phx-value-by="1">+1</button>
      <form id="save-form" phx-submit="save">
        <input id="note" name="note" />
        <input id="lv-password" type="password" name="password" />
        <input id="card" name="card_number" />
        <button id="save" type="submit">Save</button>
      </form>
      <span id="saved"><%= @saved %></span>
      <.live_component module={ScopeAppWeb.BadgeComponent} id="badge" count={@count} />
      <button id="crash" phx-click="crash">crash</button>
    </div>
    """
  end
end

defmodule ScopeAppWeb.BadgeComponent do
  @moduledoc "A live component with an event of its own (`toggle`)."
  use Phoenix.LiveComponent

  @impl true
  def mount(socket), do: {:ok, assign(socket, :open, false)}

  @impl true
  def handle_event("toggle", _params, socket), do: {:noreply, update(socket, :open, &(!&1))}

  @impl true
  def render(assigns) do
    ~H"""
    <span id="badge">
      <button id="badge-toggle" phx-click="toggle" phx-target={@myself}>badge</button>
      <span id="badge-state"><%= if @open, do: "open #{@count}", else: "closed" %></span>
    </span>
    """
  end
end
