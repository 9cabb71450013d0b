defmodule ScopeAppWeb.CounterLive do
  @moduledoc """
  A counter: `handle_event("inc")` changes it from the browser, and `handle_info` takes the
  cart's total from its PubSub broadcasts.
  """
  use ScopeAppWeb, :live_view

  @impl true
  def mount(_params, _session, socket) do
    if connected?(socket), do: Phoenix.PubSub.subscribe(ScopeApp.PubSub, "cart")
    {:ok, assign(socket, count: 0, cart_total: 0)}
  end

  @impl true
  def handle_event("inc", params, socket) do
    by = params |> Map.get("by", "1") |> to_string() |> String.to_integer()
    {:noreply, update(socket, :count, &(&1 + by))}
  end

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
    </div>
    """
  end
end
